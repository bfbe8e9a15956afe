"""Names of the exportable plots (Qt-free, so ``lstm-explorer export --help`` stays fast)."""

#: export name -> one-line description (listed in ``lstm-explorer export --help``)
PLOT_NAMES = {
    "loss": "training loss vs step, both cells, EMA-smoothed, with the chance baseline",
    "metric": "task metric (MSE or accuracy) vs step, with the chance baseline",
    "grad-flow": "log10 ||dL/dh_t|| vs t at the selected probe, per cell",
    "grad-heatmap": "log10 ||dL/dh_t|| over training step x t, per cell (vanishing gradients)",
    "gates": "LSTM i, f, g, o and c_t, and the RNN h_t, on the probe sequence (t x unit)",
    "saturation": "fraction of LSTM gate values below 0.1 or above 0.9, per gate, vs step",
    "param-grads": "gradient L2 norm per parameter vs step, per cell",
    "saliency": "input saliency log10 ||dy/dx_t|| vs t at the selected probe, per cell, above the probe's inputs",
    "saliency-heatmap": "log10 ||dy/dx_t|| over training step x t, per cell (where the answer comes from)",
    "spectrum": "log10 sigma_max of the state Jacobian dS_T/dS_t vs t at the selected probe, per cell (LSTM: h and c)",
    "spectrum-heatmap": "log10 sigma_max(dh_T/dh_t) over training step x t, per cell",
    "weight-sigma": "sigma_max of W_hh and of each gate's block vs step, with the vanishing bound 1/gamma",
    "card": "the run card: solved at, best/final metric, test set, decay ratio, memory gate, params, ms/step",
}
#: plots of a sweep file (``DIR/sweep.h5``)
SWEEP_PLOT_NAMES = {
    "frontier": "success rate and median final metric vs lag T, per cell (sweep files)",
    "claims": "the claims table: one number per claim, per cell (sweep files)",
}
FORMATS = ("png", "svg", "csv")
