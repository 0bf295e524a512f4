from .backbones import *  # noqa: F401,F403
from .data_preprocessors import *  # noqa: F401,F403
from .detectors import *  # noqa: F401,F403
from .layers import *  # noqa: F401,F403
from .mask_heads import *  # noqa: F401,F403
from .matching import *  # noqa: F401,F403
from .sam import *  # noqa: F401,F403
from .samic import *  # noqa: F401,F403
