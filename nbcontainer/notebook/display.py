"""How the engine's values look in IPython, set up from the notebook side.

The engine (``nbcontainer.image``, ``nbcontainer.analysis``) never imports this skin. Instead
:func:`register` — run by ``import nbcontainer`` inside a running IPython (a Jupyter kernel)
and by ``%load_ext nbcontainer`` — tells IPython how to show them:

- mimebundle formatters registered *by name* (IPython's deferred registration), so nothing
  is imported until an object is first shown; then the formatter imports the views;
- the factories behind ``Image.layer_view()``, ``manifest_view()`` and ``widget()``
  (:func:`nbcontainer.image.provide_views`), equally lazy: ipywidgets loads with the first
  widget.

Registering twice is harmless (the same entries are set again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the views and ipywidgets load with the first display, not here
    from ..image import Image
    from .views import LayersView, ManifestView
    from .widgets import LayerTreeWidget

# (module, class) of each value object → the views function that renders it
_BUNDLES = {
    ("nbcontainer.image", "Image"): "image_bundle",
    ("nbcontainer.image", "ImageIndex"): "index_bundle",
    ("nbcontainer.analysis.diff", "ImageDiff"): "diff_bundle",
}


def _formatter(function: str) -> Any:
    def show(obj: Any) -> dict[str, str]:
        from . import views

        bundle: dict[str, str] = getattr(views, function)(obj)
        return bundle

    show.__name__ = f"nbcontainer_{function}"
    return show


def layer_view(image: Image) -> LayersView:
    from .views import LayersView

    return LayersView(image)


def manifest_view(image: Image, *, html: bool = False) -> ManifestView:
    from .views import ManifestView

    return ManifestView.of(image, html=html)


def widget(image: Image) -> LayerTreeWidget:
    from .widgets import LayerTreeWidget

    return LayerTreeWidget(image)


def register(ip: Any) -> None:
    """Set up the displays in the IPython shell ``ip``."""
    from ..image import provide_views

    bundles = ip.display_formatter.mimebundle_formatter
    for (module, name), function in _BUNDLES.items():
        bundles.for_type_by_name(module, name, _formatter(function))
    provide_views(layer_view=layer_view, manifest_view=manifest_view, widget=widget)
