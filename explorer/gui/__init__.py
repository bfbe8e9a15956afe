"""The desktop window (PySide6 + pyqtgraph): live training, session replay and plot export.

The GUI only draws what the Qt-free core produces (``explorer.training`` records
and ``sessions`` files); it adds no numerics of its own. Start it with
:func:`explorer.gui.app.main` (``lstm-explorer``, ``lstm-explorer replay FILE...``).
"""
