"""Jupyter kernels that run inside an image: the kernelspec (``spec.py``), the launcher
Jupyter starts (``launcher.py``) and the byte relay that joins the server's TCP channels to
the kernel's unix sockets (``relay.py``).

Process tree of one kernel (Jupyter starts the launcher in its own session)::

    jupyter server
     └─ python -m nbcontainer.kernel.launcher SPECDIR -f CONNECTION   (the host's Python)
         │   threads: relay (TCP 127.0.0.1:ports ⇄ unix sockets), parent watch
         └─ sandbox helper H (own session) ─ C: init, pid 1 ─ python3 -m ipykernel_launcher
                                                             (the image's Python, ipc transport)

The kernel binds its five ZMQ sockets as unix sockets in a private directory bind-mounted at
``/run/nbcontainer-kernel``; the launcher listens on the TCP ports of the server's
connection file and relays each connection byte for byte (ZMTP is a plain byte stream). So the
kernel needs no network at all: it runs in a network namespace of its own unless installed
with ``--allow network.host``.
"""

from typing import TYPE_CHECKING, Any

from ..lazy import exports

if TYPE_CHECKING:
    from .spec import InstalledKernel, KernelRecord, install, kernels, remove

__all__ = ["InstalledKernel", "KernelRecord", "install", "kernels", "remove"]

_getattr = exports(__name__, {name: "spec" for name in __all__})


def __getattr__(name: str) -> Any:
    return _getattr(name)
