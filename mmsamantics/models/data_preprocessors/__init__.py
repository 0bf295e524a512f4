from .in_context_data_preprocessor import InContextDataPreprocessor

__all__ = ['InContextDataPreprocessor']
