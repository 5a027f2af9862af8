#!/usr/bin/python3
"""torch_reference.py — the `small` LRA encoder and its training step in PyTorch, timed the way
`lra bench` times lra's, for side-by-side speed and memory comparisons.

OPTIONAL tool: nothing in the suite imports or needs it. It needs PyTorch (tested with Debian's
python3-torch 1.13: `apt-get install -y python3-torch`, then run it with /usr/bin/python3, since
a pyenv or venv `python3` does not see Debian's dist-packages).

The model mirrors lra's (suite/model.c, runners/presets/small.ini) wherever it matters for cost:
  token embedding (vocab 257) + learned positions (L rows), dropout 0.1;
  2 pre-LN blocks, each
      x = x + Dropout(Wo · Attn(split(LN1(x) · Wqkv)))        (Wqkv, Wo bias-free; 2 heads of 32)
      x = x + Dropout(W2 · Dropout(GELU_tanh(W1 · LN2(x) + b1)) + b2)     (64 -> 128 -> 64)
  final LayerNorm, masked mean pooling, head Linear(64,128) + ReLU + Linear(128,2),
  cross-entropy, AdamW(lr 1e-4, betas 0.9/0.999, eps 1e-6, weight decay 0). LayerNorm eps 1e-6
  and lra's initialisers (N(0,1) tokens, N(0,0.02) positions, Xavier-uniform projections,
  N(0,1e-6) MLP biases, LeCun-normal head). A train step is what lra bench's is: zero the
  gradients, forward with dropout, backward, the global gradient norm, the AdamW update.
  An infer step is one forward pass in eval mode under torch.no_grad() (what a PyTorch
  evaluation loop does; lra's infer step is likewise a forward without dropout).

Attention variants (--attn):
  softmax    S = QKᵀ/√Dh − 1e6·(1 − key mask), P = softmax(S), Dropout(0.1)(P) · V: the plain
             matmul-softmax-matmul of the PyTorch LRA ports (Nyströmformer/Skyformer code), so it
             materialises (B, H, L, L) tensors and its memory is O(L²). That is the point of the
             comparison; it is neither lra's `softmax` (also O(L²), but without autograd's extra
             copies) nor its `flash` (O(L)).
  linear     lra's `linear`: Φ = elu(Q)+1, Ψ = key mask ∘ (elu(K)+1),
             O = Φ(ΨᵀV) / (Φ·ΣΨ + 1e-6). No attention dropout.
  performer  FAVOR+ (softmax kernel) with --features (default 256) positive orthogonal random
             features, lra's `performer` with kernel=softmax: x' = Dh^(-1/4) x,
             φ(x) = m^(-1/2) (exp(Wx' − ‖x'‖²/2 − c) + 1e-4), c the max over features per query
             and over features and real keys for the keys, then Performer's renormalised
             linear attention. W: ⌈m/Dh⌉ blocks of orthonormal rows with chi-distributed norms,
             one per layer shared by the heads, never redrawn, not trained.
             Why FAVOR+ and not lra's default ReLU kernel: the Nyströmformer port's
             `performer-256` builds performer_pytorch's FastAttention(nb_features=256,
             kernel_fn=nn.ReLU()) without generalized_attention=True, and FastAttention ignores
             kernel_fn in that case, so the port effectively runs the FAVOR+ softmax kernel with
             256 orthogonal features. Compare it with `lra bench ... --set
             attn.performer.kernel=softmax` (lra's default performer is the cheaper ReLU kernel
             with r = Dh = 32 features). As in the ports, the stabiliser c is detached (lra
             differentiates it through its arg-max; the cost difference is negligible).

Protocol (as lra bench): random byte tokens (ids 1-256, every position real) and random labels
(2 classes), every (variant, length) in a fresh child process (this script re-invoking itself
with --one) so the peak RSS is that configuration's alone; --warmup untimed steps, then
--repeats timed steps; median with min/max. Peak RSS comes from wait4() on the child
(ru_maxrss), cross-checked with the child's own VmHWM; the baseline is the child's VmHWM after
`import torch` and before the model is built, so peak − baseline ("config MB") is what the
configuration itself needs, as lra bench's config_rss_bytes.

--check-numerics runs a forward (eval mode, fixed seeds) on a tiny padded batch for each
variant and prints the loss, parameter count and a few self-checks (padding invariance, linear
attention vs its explicit O(L²) form, FAVOR+ vs exact softmax attention). It does not load lra's
weights and does not match lra bit for bit (different RNG): it checks shapes and plumbing.

Examples:
  /usr/bin/python3 tools/torch_reference.py --attn softmax,linear,performer \
      --len 1024,2048,4096 --batch 8 --threads 2 --out results/perf/torch_reference.csv
  /usr/bin/python3 tools/torch_reference.py --check-numerics
"""
import argparse
import csv
import datetime
import math
import os
import statistics
import subprocess
import sys
import threading
import time

VOCAB = 257  # 256 bytes + padding id 0, as lra bench / LRA's Text task
CLASSES = 2
VARIANTS = ("softmax", "linear", "performer")

# The `small` preset (runners/presets/small.ini).
SMALL = dict(layers=2, emb_dim=64, heads=2, qkv_dim=64, mlp_dim=128, dropout=0.1,
             attn_dropout=0.1, lr=1e-4, beta1=0.9, beta2=0.999, adam_eps=1e-6,
             weight_decay=0.0)
LN_EPS = 1e-6        # suite/ops.c LN_EPS
LINEAR_EPS = 1e-6    # attention/linear.c default eps
FAVOR_EPS = 1e-4     # attention/performer.c PERFORMER_FAVOR_EPS
RENORM_DELTA = 1e-6  # attention/performer.c PERFORMER_DELTA


def csv_list(kind):
    def parse(s):
        try:
            return [kind(x) for x in s.split(",") if x.strip()]
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e))
    return parse


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="The `small` LRA encoder's training step in PyTorch, timed like `lra bench` "
                    "(optional cross-check tool; see tools/README.md).")
    ap.add_argument("--attn", type=csv_list(str), default=list(VARIANTS),
                    help="variants, comma-separated: softmax,linear,performer (default all)")
    ap.add_argument("--len", dest="lens", type=csv_list(int), default=[1024, 2048, 4096],
                    help="sequence lengths (default 1024,2048,4096)")
    ap.add_argument("--batch", type=int, default=8, help="default 8")
    ap.add_argument("--repeats", type=int, default=5, help="timed steps (default 5)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    ap.add_argument("--features", type=int, default=256,
                    help="performer random features m (default 256)")
    ap.add_argument("--mode", choices=("train", "infer"), default="train",
                    help="train: forward, backward, grad norm, AdamW (default); infer: forward")
    ap.add_argument("--max-seconds", type=float, default=1800.0,
                    help="per configuration, else recorded as timeout (default 1800)")
    ap.add_argument("--out", metavar="FILE.csv", help="also write the results as CSV")
    ap.add_argument("--quiet", action="store_true", help="no per-step progress on stderr")
    ap.add_argument("--check-numerics", action="store_true",
                    help="tiny fixed-seed forward per variant: print losses and self-checks")
    ap.add_argument("--compare", nargs="+", metavar="LRA.h5",
                    help="no measuring: print lra bench file(s) side by side with --csv "
                         "(needs h5py: apt-get install -y python3-h5py)")
    ap.add_argument("--csv", metavar="TORCH.csv",
                    help="with --compare: this script's CSV (default results/perf/"
                         "torch_reference.csv)", default="results/perf/torch_reference.csv")
    ap.add_argument("--one", nargs=2, metavar=("VARIANT", "LEN"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    for v in a.attn:
        if v not in VARIANTS:
            ap.error("--attn: unknown variant %r (choose from %s)" % (v, ",".join(VARIANTS)))
    for name in ("batch", "repeats", "threads", "features"):
        if getattr(a, name) < 1:
            ap.error("--%s must be at least 1" % name)
    if a.warmup < 0:
        ap.error("--warmup must be at least 0")
    if not a.lens or min(a.lens) < 1:
        ap.error("--len needs positive lengths")
    return a


def vm_hwm_bytes():
    """The calling process's RSS high-water mark (VmHWM), in bytes; -1 if unavailable."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def loaded_blas():
    """The BLAS shared objects mapped into this process (Debian's torch says BLAS_INFO=generic
    and uses whatever libblas.so.3 the alternatives system selects)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in os.path.basename(path):
                    libs.add(path)
    except OSError:
        pass
    return ";".join(sorted(libs)) or "?"


# ---- model (imported only in children and --check-numerics: the parent stays small) ----------

def build_model_classes():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class SoftmaxAttention(nn.Module):
        """Plain matmul-softmax-matmul, as the PyTorch LRA ports: O(L²) memory."""

        def __init__(self, head_dim, attn_dropout, layer_seed):
            super().__init__()
            self.scale = 1.0 / math.sqrt(head_dim)
            self.drop = nn.Dropout(attn_dropout)

        def forward(self, q, k, v, mask):
            dot = torch.matmul(q, k.transpose(-2, -1)) * self.scale
            dot = dot - 1e6 * (1.0 - mask[:, None, None, :])
            p = F.softmax(dot, dim=-1)
            return torch.matmul(self.drop(p), v)

    class LinearAttention(nn.Module):
        """lra's `linear`: elu+1 features, masked keys, eps-stabilised denominator."""

        def __init__(self, head_dim, attn_dropout, layer_seed):
            super().__init__()

        def forward(self, q, k, v, mask):
            phi_q = F.elu(q) + 1.0
            phi_k = (F.elu(k) + 1.0) * mask[:, None, :, None]
            kv = torch.matmul(phi_k.transpose(-2, -1), v)            # (B, H, Dh, Dh)
            den = torch.matmul(phi_q, phi_k.sum(dim=-2).unsqueeze(-1))  # (B, H, T, 1)
            return torch.matmul(phi_q, kv) / (den + LINEAR_EPS)

    def orthogonal_features(m, d, gen):
        """⌈m/d⌉ blocks of d orthonormal rows (QR of Gaussian blocks), rows scaled by the norms
        of iid Gaussian rows (chi-distributed: lra's scaling=0, performer_pytorch's default)."""
        blocks = []
        for _ in range((m + d - 1) // d):
            g = torch.randn(d, d, generator=gen, dtype=torch.float64)
            qm, _ = torch.linalg.qr(g)
            blocks.append(qm.t())
        w = torch.cat(blocks, dim=0)[:m]
        norms = torch.randn(m, d, generator=gen, dtype=torch.float64).norm(dim=1)
        return (norms[:, None] * w).float()

    class PerformerAttention(nn.Module):
        """FAVOR+ softmax kernel with m orthogonal random features (lra performer,
        kernel=softmax; what the Nyströmformer port's performer-256 runs)."""

        def __init__(self, head_dim, attn_dropout, layer_seed, features=256):
            super().__init__()
            gen = torch.Generator().manual_seed(layer_seed)
            self.register_buffer("w", orthogonal_features(features, head_dim, gen))
            self.xscale = head_dim ** -0.25
            self.ratio = features ** -0.5

        def features(self, x, keymask=None):
            xs = x * self.xscale
            proj = torch.matmul(xs, self.w.t())                       # (B, H, T, m)
            diag = 0.5 * (xs * xs).sum(dim=-1, keepdim=True)
            if keymask is None:
                c = proj.amax(dim=-1, keepdim=True)
            elif bool(keymask.all()):
                c = proj.amax(dim=(-2, -1), keepdim=True)
            else:  # the max over the real keys only
                real = keymask[:, None, :, None] > 0
                c = proj.masked_fill(~real, float("-inf")).amax(dim=(-2, -1), keepdim=True)
                c = torch.where(torch.isfinite(c), c, torch.zeros_like(c))
            return self.ratio * (torch.exp(proj - diag - c.detach()) + FAVOR_EPS)

        def forward(self, q, k, v, mask):
            phi_q = self.features(q)
            phi_k = self.features(k, mask) * mask[:, None, :, None]
            kv = torch.matmul(phi_k.transpose(-2, -1), v)              # (B, H, m, Dh)
            den = torch.matmul(phi_q, phi_k.sum(dim=-2).unsqueeze(-1))  # (B, H, T, 1)
            den = torch.where(den.abs() <= RENORM_DELTA, den + 2 * RENORM_DELTA, den)
            return torch.matmul(phi_q, kv) / den

    class Block(nn.Module):
        def __init__(self, cfg, attn):
            super().__init__()
            D, Q, M = cfg["emb_dim"], cfg["qkv_dim"], cfg["mlp_dim"]
            self.H, self.Dh, self.Q = cfg["heads"], Q // cfg["heads"], Q
            self.ln1 = nn.LayerNorm(D, eps=LN_EPS)
            self.wqkv = nn.Linear(D, 3 * Q, bias=False)
            self.attn = attn
            self.wo = nn.Linear(Q, D, bias=False)
            self.ln2 = nn.LayerNorm(D, eps=LN_EPS)
            self.w1 = nn.Linear(D, M)
            self.w2 = nn.Linear(M, D)
            self.drop = nn.Dropout(cfg["dropout"])

        def forward(self, x, mask):
            B, T, _ = x.shape
            qkv = self.wqkv(self.ln1(x)).view(B, T, 3, self.H, self.Dh).permute(2, 0, 3, 1, 4)
            o = self.attn(qkv[0], qkv[1], qkv[2], mask)                # (B, H, T, Dh)
            o = o.transpose(1, 2).reshape(B, T, self.Q)
            x = x + self.drop(self.wo(o))
            h = self.drop(F.gelu(self.w1(self.ln2(x)), approximate="tanh"))
            return x + self.drop(self.w2(h))

    class Encoder(nn.Module):
        def __init__(self, cfg, variant, seq_len, features=256, seed=0):
            super().__init__()
            D, M = cfg["emb_dim"], cfg["mlp_dim"]
            Dh = cfg["qkv_dim"] // cfg["heads"]
            self.tokens = nn.Embedding(VOCAB, D)
            self.pos = nn.Parameter(torch.zeros(seq_len, D))
            self.drop = nn.Dropout(cfg["dropout"])
            blocks = []
            for l in range(cfg["layers"]):
                layer_seed = seed * 1000 + l + 1
                if variant == "softmax":
                    attn = SoftmaxAttention(Dh, cfg["attn_dropout"], layer_seed)
                elif variant == "linear":
                    attn = LinearAttention(Dh, cfg["attn_dropout"], layer_seed)
                else:
                    attn = PerformerAttention(Dh, cfg["attn_dropout"], layer_seed, features)
                blocks.append(Block(cfg, attn))
            self.blocks = nn.ModuleList(blocks)
            self.lnf = nn.LayerNorm(D, eps=LN_EPS)
            self.head1 = nn.Linear(D, M)
            self.head2 = nn.Linear(M, CLASSES)
            self.reset_parameters()

        @torch.no_grad()
        def reset_parameters(self):
            """lra's initialisers (suite/model.c init_params)."""
            nn.init.normal_(self.tokens.weight, 0.0, 1.0)
            nn.init.normal_(self.pos, 0.0, 0.02)
            for b in self.blocks:
                for lin in (b.wqkv, b.wo, b.w1, b.w2):
                    # wqkv: fan-out of each of q, k, v is Q, so the bound is sqrt(6/(D+Q)).
                    fan_out = lin.out_features // 3 if lin is b.wqkv else lin.out_features
                    a = math.sqrt(6.0 / (lin.in_features + fan_out))
                    nn.init.uniform_(lin.weight, -a, a)
                for bias in (b.w1.bias, b.w2.bias):
                    nn.init.normal_(bias, 0.0, 1e-6)
            for lin in (self.head1, self.head2):
                nn.init.normal_(lin.weight, 0.0, 1.0 / math.sqrt(lin.in_features))
                nn.init.zeros_(lin.bias)

        def forward(self, tok, mask, labels):
            T = tok.shape[1]
            x = self.drop(self.tokens(tok) + self.pos[:T])
            for b in self.blocks:
                x = b(x, mask)
            x = self.lnf(x)
            pooled = (x * mask[:, :, None]).sum(dim=1) / mask.sum(dim=1, keepdim=True).clamp_min(1)
            logits = self.head2(F.relu(self.head1(pooled)))
            return F.cross_entropy(logits, labels)

    return Encoder


def expected_params(seq_len, cfg=SMALL):
    """Trainable parameters of the model (lra counts the same tensors, but pads each tensor to a
    multiple of 16 floats in lra_model_n_params)."""
    D, Q, M, L = cfg["emb_dim"], cfg["qkv_dim"], cfg["mlp_dim"], cfg["layers"]
    block = 2 * D + D * 3 * Q + Q * D + 2 * D + D * M + M + M * D + D
    head = D * M + M + M * CLASSES + CLASSES
    return VOCAB * D + seq_len * D + L * block + 2 * D + head


def make_inputs(torch, batch, seq_len, seed):
    """Random byte tokens (1-256), every position real, random labels: lra bench's inputs."""
    gen = torch.Generator().manual_seed(seed)
    tok = torch.randint(1, VOCAB, (batch, seq_len), generator=gen)
    labels = torch.randint(0, CLASSES, (batch,), generator=gen)
    mask = torch.ones(batch, seq_len)
    return tok, mask, labels


# ---- child: one configuration -----------------------------------------------------------

def emit(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def run_one(a):
    variant, seq_len = a.one[0], int(a.one[1])
    import torch
    torch.set_num_threads(a.threads)
    emit("baseline %d" % vm_hwm_bytes())
    import re
    found = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
    blas = found.group(1) if found else ""
    torch.matmul(torch.ones(64, 64), torch.ones(64, 64))  # make sure the BLAS is loaded
    emit("torch %s blas=%s(%s) threads=%d" % (torch.__version__, blas or "?", loaded_blas(),
                                              torch.get_num_threads()))
    torch.manual_seed(0)
    Encoder = build_model_classes()
    model = Encoder(SMALL, variant, seq_len, a.features)
    params = [p for p in model.parameters() if p.requires_grad]
    emit("nparams %d" % sum(p.numel() for p in params))
    opt = torch.optim.AdamW(params, lr=SMALL["lr"], betas=(SMALL["beta1"], SMALL["beta2"]),
                            eps=SMALL["adam_eps"], weight_decay=SMALL["weight_decay"])
    tok, mask, labels = make_inputs(torch, a.batch, seq_len, 0xbe9c + seq_len)

    def train_step():
        opt.zero_grad()
        loss = model(tok, mask, labels)
        loss.backward()
        # The global gradient norm, as lra's step computes it for its log (clip = 0).
        torch.norm(torch.stack([p.grad.detach().norm() for p in params]))
        opt.step()
        return loss

    def infer_step():
        with torch.no_grad():
            return model(tok, mask, labels)

    if a.mode == "train":
        model.train()
        step = train_step
    else:
        model.eval()
        step = infer_step
    for r in range(a.warmup + a.repeats):
        timed = r >= a.warmup
        t0 = time.perf_counter()
        loss = step()
        s = time.perf_counter() - t0
        if timed:
            emit("rep %.9g" % s)
        if not a.quiet:
            sys.stderr.write("    %s %d/%d: %.3f s (loss %.4f)\n" % (
                "repeat" if timed else "warm-up", r - a.warmup + 1 if timed else r + 1,
                a.repeats if timed else a.warmup, s, float(loss)))
            sys.stderr.flush()
    emit("hwm %d" % vm_hwm_bytes())
    emit("done")
    return 0


# ---- parent: the sweep ------------------------------------------------------------------

def run_config(a, variant, seq_len):
    r = dict(variant=variant, length=seq_len, status="failed", reason="", secs=[],
             baseline=-1, hwm=-1, peak=-1, nparams=-1, torch="")
    cmd = [sys.executable, os.path.abspath(__file__), "--one", variant, str(seq_len),
           "--batch", str(a.batch), "--repeats", str(a.repeats), "--warmup", str(a.warmup),
           "--threads", str(a.threads), "--features", str(a.features), "--mode", a.mode]
    if a.quiet:
        cmd.append("--quiet")
    env = dict(os.environ)
    for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[k] = str(a.threads)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    timed_out = []

    def kill():
        timed_out.append(True)
        try:
            p.kill()
        except OSError:
            pass

    timer = threading.Timer(a.max_seconds, kill)
    timer.start()
    done = False
    try:
        for line in p.stdout:
            key, _, val = line.strip().partition(" ")
            if key == "rep":
                r["secs"].append(float(val))
            elif key in ("baseline", "hwm", "nparams"):
                r[key] = int(val)
            elif key == "torch":
                r["torch"] = val
            elif key == "done":
                done = True
    finally:
        timer.cancel()
        p.stdout.close()
        # wait4 on this child alone: ru_maxrss is its peak (KiB on Linux), not the maximum
        # over every child so far as RUSAGE_CHILDREN would give.
        _, status, ru = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    r["peak"] = ru.ru_maxrss * 1024
    if timed_out:
        r["status"] = "timeout"
        r["reason"] = "exceeded --max-seconds %g after %d of %d timed steps" % (
            a.max_seconds, len(r["secs"]), a.repeats)
    elif p.returncode < 0:
        r["reason"] = "killed by signal %d%s" % (
            -p.returncode, " (out of memory?)" if p.returncode == -9 else "")
    elif p.returncode != 0 or not done:
        r["reason"] = "exit status %d" % p.returncode
    else:
        r["status"] = "ok"
    if r["secs"]:
        r["median"] = statistics.median(r["secs"])
        r["min"], r["max"] = min(r["secs"]), max(r["secs"])
    return r


def fmt_mb(b):
    return "%.1f" % (b / 1048576.0) if b >= 0 else "-"


def print_table(a, results, torch_info):
    print("torch_reference: mode %s, batch %d, preset small (PyTorch), %d threads, "
          "performer %d features, %s" % (a.mode, a.batch, a.threads, a.features,
                                         torch_info or "torch ?"))
    print("%-10s %6s  %-26s %8s %7s %9s %9s %9s %7s" % (
        "variant", "len", "s/step median [min-max]", "steps/s", "speed", "peak MB",
        "base MB", "config MB", "memory"))
    for r in results:
        head = "%-10s %6d  " % (r["variant"], r["length"])
        if r["status"] != "ok":
            print(head + "%-8s %s" % (r["status"], r["reason"]))
            continue
        sm = next((s for s in results if s["variant"] == "softmax"
                   and s["length"] == r["length"] and s["status"] == "ok"), None)
        spread = "%.3g [%.3g-%.3g]" % (r["median"], r["min"], r["max"])
        speed = "%.2fx" % (sm["median"] / r["median"]) if sm else "-"
        mem = "%.2fx" % (r["peak"] / sm["peak"]) if sm else "-"
        config = r["peak"] - r["baseline"] if r["baseline"] >= 0 else -1
        print(head + "%-26s %8.3g %7s %9s %9s %9s %7s" % (
            spread, 1.0 / r["median"], speed, fmt_mb(r["peak"]), fmt_mb(r["baseline"]),
            fmt_mb(config), mem))
    sys.stdout.flush()


CSV_FIELDS = ["variant", "length", "mode", "batch", "threads", "repeats", "warmup", "features",
              "status", "reason", "step_seconds_median", "step_seconds_min", "step_seconds_max",
              "steps_per_s_median", "steps_per_s_min", "steps_per_s_max", "peak_rss_bytes",
              "child_vm_hwm_bytes", "baseline_rss_bytes", "config_rss_bytes", "n_params",
              "torch", "measured_at", "step_seconds"]


def write_csv(a, results, measured_at):
    d = os.path.dirname(os.path.abspath(a.out))
    os.makedirs(d, exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        w.writeheader()
        for r in results:
            ok = "median" in r
            row = dict(variant=r["variant"], length=r["length"], mode=a.mode, batch=a.batch,
                       threads=a.threads, repeats=a.repeats, warmup=a.warmup,
                       features=a.features if r["variant"] == "performer" else "",
                       status=r["status"], reason=r["reason"],
                       peak_rss_bytes=r["peak"], child_vm_hwm_bytes=r["hwm"],
                       baseline_rss_bytes=r["baseline"],
                       config_rss_bytes=(r["peak"] - r["baseline"]
                                         if r["baseline"] >= 0 and r["peak"] >= 0 else ""),
                       n_params=r["nparams"], torch=r["torch"], measured_at=measured_at,
                       step_seconds=" ".join("%.6g" % s for s in r["secs"]))
            if ok:
                row.update(step_seconds_median="%.6g" % r["median"],
                           step_seconds_min="%.6g" % r["min"],
                           step_seconds_max="%.6g" % r["max"],
                           steps_per_s_median="%.6g" % (1 / r["median"]),
                           steps_per_s_min="%.6g" % (1 / r["max"]),
                           steps_per_s_max="%.6g" % (1 / r["min"]))
            w.writerow(row)
    os.replace(tmp, a.out)


def run_sweep(a):
    measured_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    results = []
    n = len(a.attn) * len(a.lens)
    torch_info = ""
    try:
        for variant in a.attn:
            for seq_len in a.lens:
                if not a.quiet:
                    sys.stderr.write("[%d/%d] %s, length %d, batch %d, %s\n" % (
                        len(results) + 1, n, variant, seq_len, a.batch, a.mode))
                    sys.stderr.flush()
                r = run_config(a, variant, seq_len)
                torch_info = torch_info or r["torch"]
                if r["status"] != "ok":
                    sys.stderr.write("  %s: %s\n" % (r["status"], r["reason"]))
                results.append(r)
                if a.out:
                    write_csv(a, results, measured_at)  # after every configuration
    except KeyboardInterrupt:
        sys.stderr.write("torch_reference: interrupted\n")
        print_table(a, results, torch_info)
        return 130
    print_table(a, results, torch_info)
    if a.out:
        sys.stderr.write("torch_reference: results in %s\n" % a.out)
    return 0


# ---- --check-numerics ---------------------------------------------------------------------

def check_numerics(a):
    import torch
    torch.set_num_threads(a.threads)
    Encoder = build_model_classes()
    B, T, pad = 2, 64, 16
    print("check-numerics: torch %s, batch %d, length %d (example 1 has %d padded tokens), "
          "eval mode (no dropout), seed 0" % (torch.__version__, B, T, pad))
    gen = torch.Generator().manual_seed(1234)
    tok = torch.randint(1, VOCAB, (B, T), generator=gen)
    labels = torch.tensor([0, 1])
    mask = torch.ones(B, T)
    tok[1, T - pad:] = 0
    mask[1, T - pad:] = 0
    failures = 0
    for variant in a.attn:
        torch.manual_seed(0)
        model = Encoder(SMALL, variant, T, a.features).eval()
        n = sum(p.numel() for p in model.parameters() if p.requires_grad)
        with torch.no_grad():
            loss = float(model(tok, mask, labels))
            tok2 = tok.clone()
            tok2[1, T - pad:] = torch.randint(1, VOCAB, (pad,), generator=gen)
            loss2 = float(model(tok2, mask, labels))  # padded positions hold other tokens
        model.train()
        lt = model(tok, mask, labels)
        lt.backward()
        gnorm = float(torch.norm(torch.stack([p.grad.norm() for p in model.parameters()
                                              if p.grad is not None])))
        ok = (math.isfinite(loss) and math.isfinite(gnorm) and n == expected_params(T)
              and abs(loss - loss2) <= 1e-5 * max(1.0, abs(loss)))
        failures += not ok
        invariant = "yes" if abs(loss - loss2) <= 1e-5 * max(1.0, abs(loss)) else \
            "NO (%.3g)" % (loss2 - loss)
        print("  %-10s params %d (expected %d)  loss %.6f  padding-invariant %s  "
              "train-mode loss %.6f  grad norm %.4g  %s" % (
                  variant, n, expected_params(T), loss, invariant, float(lt), gnorm,
                  "ok" if ok else "FAIL"))

    # Attention modules against explicit O(L²) forms on one random slice set.
    torch.manual_seed(0)
    Dh = SMALL["qkv_dim"] // SMALL["heads"]
    q, k, v = (0.5 * torch.randn(B, SMALL["heads"], T, Dh, dtype=torch.float32)
               for _ in range(3))
    enc = {name: Encoder(SMALL, name, T, a.features) for name in VARIANTS}
    soft = enc["softmax"].blocks[0].attn.eval()
    lin = enc["linear"].blocks[0].attn.eval()
    with torch.no_grad():
        s = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(Dh)
        s = s.masked_fill(mask[:, None, None, :] == 0, float("-inf"))
        exact = torch.matmul(torch.softmax(s, dim=-1), v)
        err_s = float((soft(q, k, v, mask) - exact).abs().max())
        fq = torch.nn.functional.elu(q) + 1
        fk = (torch.nn.functional.elu(k) + 1) * mask[:, None, :, None]
        w = torch.matmul(fq, fk.transpose(-2, -1))
        ref_lin = torch.matmul(w, v) / (w.sum(-1, keepdim=True) + LINEAR_EPS)
        err_l = float((lin(q, k, v, mask) - ref_lin).abs().max())
        rel_p = []
        for m in (a.features, 4096):
            perf = build_model_classes()(SMALL, "performer", T, m).blocks[0].attn.eval()
            rel_p.append(float((perf(q, k, v, mask) - exact).norm() / exact.norm()))
    print("  softmax module vs exact softmax attention: max |diff| %.2e %s" % (
        err_s, "ok" if err_s < 1e-5 else "FAIL"))
    print("  linear module vs explicit elu+1 weights:   max |diff| %.2e %s" % (
        err_l, "ok" if err_l < 1e-5 else "FAIL"))
    print("  performer (FAVOR+) vs exact softmax attention: relative error %.3g with %d "
          "features, %.3g with 4096 (should shrink) %s" % (
              rel_p[0], a.features, rel_p[1], "ok" if rel_p[1] < rel_p[0] else "FAIL"))
    failures += (err_s >= 1e-5) + (err_l >= 1e-5) + (rel_p[1] >= rel_p[0])
    print("check-numerics: %s" % ("all checks passed" if not failures else
                                  "%d check(s) FAILED" % failures))
    return 1 if failures else 0


# ---- --compare ----------------------------------------------------------------------------

def lra_label(variant, config):
    """lra's variant name plus the attention options that change its cost (performer's kernel),
    so `performer` (ReLU kernel, r = Dh) and `performer[kernel=softmax]` stay apart."""
    opts = [l.replace(" ", "")[5:] for l in config.splitlines() if l.startswith("attn.")]
    return variant + ("[%s]" % ",".join(opts) if opts else "")


def compare(a):
    try:
        import h5py
    except ImportError:
        sys.stderr.write("torch_reference: --compare needs h5py (apt-get install -y "
                         "python3-h5py, then run with /usr/bin/python3)\n")
        return 2
    with open(a.csv, newline="") as f:
        torch_rows = [r for r in csv.DictReader(f) if r["status"] == "ok"]
    lra_rows = []
    for path in a.compare:
        with h5py.File(path, "r") as f:
            for g_path in str(f.attrs["configs"]).split():
                g = f[g_path]
                at = dict(g.attrs)
                def txt(x):
                    return x.decode() if isinstance(x, bytes) else str(x)
                if txt(at.get("status", "")) != "ok":
                    continue
                lra_rows.append(dict(
                    file=path, mode=txt(at["mode"]), length=int(at["length"]),
                    batch=int(at["batch"]), threads=int(at["threads"]),
                    variant=txt(at["variant"]),
                    label=lra_label(txt(at["variant"]), txt(at.get("config", ""))),
                    sec=float(at["step_seconds_median"]), peak=float(at["peak_rss_bytes"]),
                    config_rss=float(at.get("config_rss_bytes", -1)),
                    measured_at=txt(at.get("measured_at", ""))))
    # Which lra variants answer which PyTorch one, and issue 7's targets for each pair:
    # (minimum speedup, lengths it applies to or None for all, maximum memory ratio or None).
    partners = {"softmax": ("softmax", "flash"), "linear": ("linear",),
                "performer": ("performer",)}
    targets = {("softmax", "flash"): (10.0, (4096,), 0.2), ("softmax", "softmax"): (1.0, None, 0.2),
               ("linear", "linear"): (3.0, None, None),
               ("performer", "performer"): (3.0, None, None)}
    print("lra vs PyTorch (same mode, length, batch): speedup = torch s/step / lra s/step; "
          "memory = lra / torch (peak RSS; config = peak - baseline); target = the speed and "
          "memory bars of issue 7 where one applies at that length")
    print("%-10s %6s %-28s %10s %10s %8s %9s %9s %7s %8s  %s" % (
        "torch", "len", "lra variant", "torch s", "lra s", "speedup", "torch MB", "lra MB",
        "memory", "config", "target"))
    failed = 0
    for t in sorted(torch_rows, key=lambda r: (r["mode"], r["variant"], int(r["length"]))):
        L, tsec = int(t["length"]), float(t["step_seconds_median"])
        tpeak, tcfg = float(t["peak_rss_bytes"]), float(t["config_rss_bytes"] or -1)
        for l in lra_rows:
            if (l["variant"] not in partners[t["variant"]] or l["length"] != L
                    or l["mode"] != t["mode"] or l["batch"] != int(t["batch"])):
                continue
            warn = "" if l["threads"] == int(t["threads"]) else "  (threads %d vs %s)" % (
                l["threads"], t["threads"])
            cfg = "%.2fx" % (l["config_rss"] / tcfg) if tcfg > 0 and l["config_rss"] > 0 else "-"
            verdict = "-"
            speed_min, lens, mem_max = targets.get((t["variant"], l["variant"]), (None,) * 3)
            if t["variant"] == "performer" and "kernel=softmax" not in l["label"]:
                speed_min = None  # the ReLU-kernel performer is not PyTorch's FAVOR+ workload
            if speed_min is not None and (lens is None or L in lens):
                ok = tsec / l["sec"] >= speed_min
                bar = ">=%gx" % speed_min
                if mem_max is not None and L == 4096:
                    ok = ok and l["peak"] / tpeak <= mem_max
                    bar += ", mem <=%.2g" % mem_max
                verdict = ("met " if ok else "MISSED ") + bar
                failed += not ok
            print("%-10s %6d %-28s %10.4g %10.4g %7.2fx %9.1f %9.1f %6.2fx %8s  %s%s" % (
                t["variant"], L, l["label"], tsec, l["sec"], tsec / l["sec"],
                tpeak / 1048576, l["peak"] / 1048576, l["peak"] / tpeak, cfg, verdict, warn))
    # Every other lra variant against PyTorch's exact softmax at the same length: at least 1x.
    torch_softmax = {(r["mode"], int(r["length"]), int(r["batch"])): float(r["step_seconds_median"])
                     for r in torch_rows if r["variant"] == "softmax"}
    others = [l for l in lra_rows if l["variant"] not in ("softmax", "flash", "linear")
              and not l["label"].startswith("performer")
              and (l["mode"], l["length"], l["batch"]) in torch_softmax]
    if others:
        print("\nother lra variants vs PyTorch softmax (target >= 1x)")
        print("%-28s %6s %10s %10s %8s  %s" % ("lra variant", "len", "torch s", "lra s",
                                               "speedup", "target"))
        for l in sorted(others, key=lambda r: (r["label"], r["length"])):
            tsec = torch_softmax[(l["mode"], l["length"], l["batch"])]
            ok = tsec / l["sec"] >= 1.0
            failed += not ok
            print("%-28s %6d %10.4g %10.4g %7.2fx  %s" % (l["label"], l["length"], tsec, l["sec"],
                                                         tsec / l["sec"],
                                                         "met" if ok else "MISSED"))
    # Path-X: one training step at L = 16384 must fit in 4 GiB, for every variant without an
    # L x L parameter matrix (Synthesizer's dense and random modes hold one and are exempt).
    pathx = [l for l in lra_rows if l["length"] == 16384]
    if pathx:
        print("\nPath-X (L = 16384) peak RSS (target <= 4096 MB; synthesizer exempt)")
        for l in sorted(pathx, key=lambda r: r["label"]):
            ok = l["peak"] <= 4096 * 1048576 or l["variant"] == "synthesizer"
            failed += not ok
            print("%-28s batch %2d %9.1f MB  %s" % (l["label"], l["batch"], l["peak"] / 1048576,
                                                    "met" if ok else "MISSED"))
    print("\n%d target(s) missed" % failed)
    return 0


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    if a.one or a.check_numerics:
        try:
            import torch  # noqa: F401
        except ImportError:
            sys.stderr.write(
                "torch_reference: PyTorch is not importable by %s. Install it with "
                "`apt-get install -y python3-torch` and run this script with /usr/bin/python3 "
                "(Debian's interpreter; a pyenv or venv python does not see dist-packages).\n"
                % sys.executable)
            return 2
    if a.compare:
        return compare(a)
    if a.one:
        return run_one(a)
    if a.check_numerics:
        return check_numerics(a)
    import importlib.util
    if importlib.util.find_spec("torch") is None:  # checked without importing it here
        sys.stderr.write("torch_reference: PyTorch is not importable by %s; install it with "
                         "`apt-get install -y python3-torch` and run this script with "
                         "/usr/bin/python3.\n" % sys.executable)
        return 2
    return run_sweep(a)


if __name__ == "__main__":
    sys.exit(main())
