"""Who ran a command, as the history records it: ``command (<OS user>)``."""

import getpass


def command_actor() -> str:
    try:
        return f"command ({getpass.getuser()})"
    except (KeyError, OSError):  # a container user without a passwd entry
        return "command"
