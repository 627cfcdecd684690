"""ComfyUI entry point of the MoRe4D node pack.

ComfyUI imports this folder as a package. The library (``more4d_core``) is imported by absolute
name, so this folder is put on ``sys.path`` first; the node package is imported relatively (a
top-level ``nodes`` would clash with ComfyUI's own ``nodes`` module). pytest imports this file as
a stand-alone module when it sets up the folder (a clone named ``ComfyUI-MoRe4D`` is not a valid
package name): then there is no package to import from, and nothing is registered.
"""

import logging
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

if __package__:  # ComfyUI imports the folder as a package (pytest may load this file on its own, unnamed)
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS
    from .nodes import comfy_bridge as _bridge
    from .nodes import model_files as _model_files

    try:  # ComfyUI's V3 node API: the nodes are io.ComfyNode classes under the same ids
        from comfy_api.latest import io as _io
    except ImportError:  # a ComfyUI from before it: the classic classes
        _io = None
    if _io is not None:
        from .nodes.v3 import v3_nodes

        NODE_CLASS_MAPPINGS = v3_nodes(_io, NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS)
        logging.getLogger("more4d").info("MoRe4D: %d nodes on ComfyUI's V3 schema", len(NODE_CLASS_MAPPINGS))

    _bridge.install_memory_manager()
    _model_files.register()
    _model_files.install_example_images()
    _bridge.remove_stale_temporaries()
else:
    NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS = {}, {}

WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
