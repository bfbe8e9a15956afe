"""Slow, readable float64 NumPy reference of every kernel: the truth the kernels are tested against.

One loop over time, one comment per line of math (min-char-rnn style).
Parameters use PyTorch's layout: W_ih (G, I), W_hh (G, H), b_ih, b_hh (G,);
LSTM gate rows in order i, f, g, o; GRU rows r, z, n (torch.nn.GRU, b_hn inside r ⊙ (...)).
"""
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def rnn_forward(p, x, h0=None, activation="tanh"):
    """x : (T, B, I) -> h : (T, B, H); ``activation`` "tanh" or "relu" (nn.RNN's nonlinearity)."""
    T, B, _ = x.shape
    H = p["weight_hh"].shape[1]
    h_prev = np.zeros((B, H)) if h0 is None else h0
    hs = []
    for t in range(T):
        z = x[t] @ p["weight_ih"].T + h_prev @ p["weight_hh"].T + p["bias_ih"] + p["bias_hh"]  # pre-activation
        h_prev = np.tanh(z) if activation == "tanh" else np.maximum(z, 0.0)                      # h_t
        hs.append(h_prev)
    return np.stack(hs)


def rnn_backward(p, x, h, dh, h0=None, activation="tanh"):
    """Gradients of L given ∂L/∂h_t for every t; returns (grads dict incl. "x", dh_norm (T,))."""
    T, B, _ = x.shape
    H = h.shape[2]
    h0 = np.zeros((B, H)) if h0 is None else h0
    g = {k: np.zeros_like(v, dtype=np.float64) for k, v in p.items()}
    dx = np.zeros(x.shape)
    dh_norm = np.zeros(T)
    dh_next = np.zeros((B, H))                       # ∂L/∂h_t arriving from step t+1
    for t in reversed(range(T)):
        h_prev = h0 if t == 0 else h[t - 1]
        dh_t = dh[t] + dh_next                       # total ∂L/∂h_t
        dh_norm[t] = np.linalg.norm(dh_t, axis=1).mean()
        dz = dh_t * (1 - h[t] ** 2) if activation == "tanh" else dh_t * (h[t] > 0)  # through tanh | relu
        g["weight_ih"] += dz.T @ x[t]                # ∂L/∂W_ih
        g["weight_hh"] += dz.T @ h_prev              # ∂L/∂W_hh
        g["bias_ih"] += dz.sum(0)                    # ∂L/∂b_ih
        g["bias_hh"] += dz.sum(0)                    # ∂L/∂b_hh (same as b_ih)
        dx[t] = dz @ p["weight_ih"]                  # ∂L/∂x_t
        dh_next = dz @ p["weight_hh"]                # ∂L/∂h_{t-1}
    g["x"] = dx
    return g, dh_norm


def lstm_forward(p, x, h0=None, c0=None):
    """x : (T, B, I) -> h, c : (T, B, H), gates : (T, B, 4H) post-activation (i, f, g, o)."""
    T, B, _ = x.shape
    H = p["weight_hh"].shape[1]
    h_prev = np.zeros((B, H)) if h0 is None else h0
    c_prev = np.zeros((B, H)) if c0 is None else c0
    hs, cs, gs = [], [], []
    for t in range(T):
        z = x[t] @ p["weight_ih"].T + h_prev @ p["weight_hh"].T + p["bias_ih"] + p["bias_hh"]  # (B, 4H)
        i = sigmoid(z[:, :H])                        # input gate
        f = sigmoid(z[:, H:2 * H])                   # forget gate
        g = np.tanh(z[:, 2 * H:3 * H])               # candidate
        o = sigmoid(z[:, 3 * H:])                    # output gate
        c_prev = f * c_prev + i * g                  # c_t
        h_prev = o * np.tanh(c_prev)                 # h_t
        hs.append(h_prev), cs.append(c_prev), gs.append(np.concatenate([i, f, g, o], axis=1))
    return np.stack(hs), np.stack(cs), np.stack(gs)


def lstm_backward(p, x, h, c, gates, dh, h0=None, c0=None):
    """Gradients of L given ∂L/∂h_t for every t; returns (grads dict incl. "x", dh_norm (T,))."""
    T, B, _ = x.shape
    H = h.shape[2]
    h0 = np.zeros((B, H)) if h0 is None else h0
    c0 = np.zeros((B, H)) if c0 is None else c0
    g_ = {k: np.zeros_like(v, dtype=np.float64) for k, v in p.items()}
    dx = np.zeros(x.shape)
    dh_norm = np.zeros(T)
    dh_next = np.zeros((B, H))                       # ∂L/∂h_t from step t+1
    dc_next = np.zeros((B, H))                       # ∂L/∂c_t from step t+1
    for t in reversed(range(T)):
        h_prev = h0 if t == 0 else h[t - 1]
        c_prev = c0 if t == 0 else c[t - 1]
        i, f, g, o = (gates[t][:, k * H:(k + 1) * H] for k in range(4))
        dh_t = dh[t] + dh_next                       # total ∂L/∂h_t
        dh_norm[t] = np.linalg.norm(dh_t, axis=1).mean()
        tc = np.tanh(c[t])
        do = dh_t * tc                               # ∂L/∂o
        dc = dc_next + dh_t * o * (1 - tc ** 2)      # ∂L/∂c_t
        di, dg, df = dc * g, dc * i, dc * c_prev     # ∂L/∂i, ∂L/∂g, ∂L/∂f
        dz = np.concatenate([di * i * (1 - i), df * f * (1 - f), dg * (1 - g ** 2), do * o * (1 - o)], axis=1)
        g_["weight_ih"] += dz.T @ x[t]
        g_["weight_hh"] += dz.T @ h_prev
        g_["bias_ih"] += dz.sum(0)
        g_["bias_hh"] += dz.sum(0)
        dx[t] = dz @ p["weight_ih"]
        dh_next = dz @ p["weight_hh"]                # ∂L/∂h_{t-1}
        dc_next = dc * f                             # ∂L/∂c_{t-1}
    g_["x"] = dx
    return g_, dh_norm


def gru_forward(p, x, h0=None):
    """x : (T, B, I) -> h : (T, B, H), gates : (T, B, 3H) post-activation (r, z, n), hn : (T, B, H)."""
    T, B, _ = x.shape
    H = p["weight_hh"].shape[1]
    h_prev = np.zeros((B, H)) if h0 is None else h0
    hs, gs, hns = [], [], []
    for t in range(T):
        gi = x[t] @ p["weight_ih"].T + p["bias_ih"]             # input side, (B, 3H)
        gh = h_prev @ p["weight_hh"].T + p["bias_hh"]           # recurrent side, (B, 3H)
        r = sigmoid(gi[:, :H] + gh[:, :H])                      # reset gate
        z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])            # update gate (keeps h)
        hn = gh[:, 2 * H:]                                      # W_hn h_{t-1} + b_hn
        n = np.tanh(gi[:, 2 * H:] + r * hn)                     # candidate
        h_prev = (1 - z) * n + z * h_prev                       # h_t
        hs.append(h_prev), gs.append(np.concatenate([r, z, n], axis=1)), hns.append(hn)
    return np.stack(hs), np.stack(gs), np.stack(hns)


def gru_backward(p, x, h, gates, hn, dh, h0=None):
    """Gradients of L given ∂L/∂h_t for every t; returns (grads dict incl. "x", dh_norm (T,))."""
    T, B, _ = x.shape
    H = h.shape[2]
    h0 = np.zeros((B, H)) if h0 is None else h0
    g_ = {k: np.zeros_like(v, dtype=np.float64) for k, v in p.items()}
    dx = np.zeros(x.shape)
    dh_norm = np.zeros(T)
    dh_next = np.zeros((B, H))                       # ∂L/∂h_t from step t+1
    for t in reversed(range(T)):
        h_prev = h0 if t == 0 else h[t - 1]
        r, z, n = (gates[t][:, k * H:(k + 1) * H] for k in range(3))
        dh_t = dh[t] + dh_next                       # total ∂L/∂h_t
        dh_norm[t] = np.linalg.norm(dh_t, axis=1).mean()
        dn = dh_t * (1 - z) * (1 - n ** 2)           # ∂L/∂(pre-tanh n)
        dz = dh_t * (h_prev - n) * z * (1 - z)       # ∂L/∂(pre-σ z)
        dr = dn * hn[t] * r * (1 - r)                # ∂L/∂(pre-σ r)
        dgi = np.concatenate([dr, dz, dn], axis=1)       # ∂L/∂(x W_ihᵀ + b_ih)
        dgh = np.concatenate([dr, dz, dn * r], axis=1)   # ∂L/∂(h W_hhᵀ + b_hh): b_hn sits inside r ⊙ (...)
        g_["weight_ih"] += dgi.T @ x[t]
        g_["weight_hh"] += dgh.T @ h_prev
        g_["bias_ih"] += dgi.sum(0)
        g_["bias_hh"] += dgh.sum(0)
        dx[t] = dgi @ p["weight_ih"]
        dh_next = dgh @ p["weight_hh"] + dh_t * z    # ∂L/∂h_{t-1}: through the products and the z path
    g_["x"] = dx
    return g_, dh_norm
