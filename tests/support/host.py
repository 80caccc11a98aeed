"""The app's functions as the Functions host finds them: by name, in `function_app.app.get_functions()`.

Tests call functions through this, never as attributes of function_app: the functions live in the flows'
blueprints, and what counts is what the app registers. `get_functions()` may run once per process (it
refuses a second indexing as duplicate names), so its answer is kept.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from azure.functions import Function


@cache
def functions() -> dict[str, Function]:
    """Every registered function by name, in registration order, indexed once as the host indexes them."""
    import function_app

    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}


def function(name: str) -> Callable[..., Any]:
    """The Python function the host calls for the registered function `name`."""
    return functions()[name].get_user_function()
