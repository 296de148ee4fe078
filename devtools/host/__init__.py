"""A local stand-in for `func start` (Azure Functions Core Tools), for machines that cannot
install it. `func start` stays the reference host; see docs/devhost.md.

    from devtools.host import DevHost
    host = DevHost(app_dir=..., settings={...}, port=0).start()
    host.url, host.function_key, host.eventgrid_url("on_image_pushed")
    host.stop()
"""

from devtools.host.config import ConfigError, HostConfig, LocalSettings, QueueOptions
from devtools.host.functions import AppLoadError, FunctionSpec
from devtools.host.host import DevHost
from devtools.host.timers import Schedule, ScheduleError

__all__ = [
    "AppLoadError", "ConfigError", "DevHost", "FunctionSpec", "HostConfig", "LocalSettings",
    "QueueOptions", "Schedule", "ScheduleError",
]
