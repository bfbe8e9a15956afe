"""The plot groups, one per exportable plot name (:data:`explorer.gui.names.PLOT_NAMES`), in that order.

A new plot or lens is one module in this package plus its class here.
"""
from explorer.gui.names import PLOT_NAMES
from explorer.gui.plots.card import CardGroup
from explorer.gui.plots.gates import GatesGroup, SaturationGroup
from explorer.gui.plots.gradients import GradFlowGroup, GradHeatmapGroup
from explorer.gui.plots.saliency import SaliencyGroup, SaliencyHeatmapGroup
from explorer.gui.plots.scalars import LossGroup, MetricGroup, ParamGradsGroup
from explorer.gui.plots.spectrum import SpectrumGroup, SpectrumHeatmapGroup, WeightSigmaGroup

GROUP_CLASSES = (LossGroup, MetricGroup, GradFlowGroup, GradHeatmapGroup, GatesGroup, SaturationGroup,
                 ParamGradsGroup, SaliencyGroup, SaliencyHeatmapGroup, SpectrumGroup, SpectrumHeatmapGroup,
                 WeightSigmaGroup, CardGroup)
assert tuple(c.name for c in GROUP_CLASSES) == tuple(PLOT_NAMES)
