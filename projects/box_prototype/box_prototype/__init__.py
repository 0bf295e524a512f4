"""A downstream in-context detector and a reference source for mmsamantics, kept outside the
package and registered through a config's ``custom_imports`` (docs/extending.md)."""
from .box_geometry_token import BoxGeometryToken
from .box_prototype_detector import BoxPrototypeDetector

__all__ = ['BoxGeometryToken', 'BoxPrototypeDetector']
