"""Frames per second of vf.flow.MultiScaleGlow against tfp.bijectors.Glow.

Three directions, each traced once with tf.function on a fixed batch (a
dynamic batch is impossible for tfp.bijectors.Glow):

  loglik   log p(x) of a standard-normal base through the flow: the inverse
           pass and its log-determinant, via tfd.TransformedDistribution
  sample   the forward pass, flat latent -> frame
  train    gradient of the mean log-likelihood and one Adam update

Both flows have the same levels, steps per level, width and affine coupling;
tfp's uses its default ReLU coupling network (tfb.GlowDefaultNetwork) and exit
network. Each timed repeat runs ours and tfp's back to back, and the fastest
repeat counts, so background load on a shared machine hurts both alike. The
GFLOP/s columns divide the convolution work both flows share by the time, next
to the machine's rate on one large matrix product, to show how close each
direction runs to what the machine can do.

The convolution bound is the frame rate of the coupling networks' convolutions
alone (3x3 in, 1x1 hidden, 3x3 out, with ReLUs, at each level's shape and this
batch, timed standalone and summed over the steps): what a flow with this
architecture reaches in float32 on this machine if everything else were free.
Neither flow can exceed it in loglik or sample.

    python benchmarks/speed/flow_speed.py                    # the paper's size
    python benchmarks/speed/flow_speed.py --steps-per-level 2 --width 64 --repeats 2
    python benchmarks/speed/flow_speed.py --ours-precision mixed --out docs/benchmarks/flow_speed_mixed.json

`--ours-precision mixed` runs our coupling networks in bfloat16 (the model's
`mixed_precision`) against tfp's float32: a different question from the
same-precision comparison, reported separately.
"""
import argparse
import json
import os
import time

import videoflow_tf  # noqa: F401  (quiet TensorFlow import)
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from videoflow_tf.model import flow as flow_lib

tfb, tfd = tfp.bijectors, tfp.distributions
IMAGE_SHAPE = (64, 64, 3)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--steps-per-level", type=int, default=24)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jit", choices=("none", "ours", "both"), default="none",
                        help="which flows run with XLA (jit_compile=True)")
    parser.add_argument("--ours-precision", choices=("float32", "mixed"), default="float32",
                        help="mixed: our coupling networks in bfloat16 (tfp's stay float32)")
    parser.add_argument("--modes", default="loglik,sample,train")
    parser.add_argument("--out", default="docs/benchmarks/flow_speed.json")
    return parser.parse_args()


def build_ours(args, frames):
    flow = flow_lib.MultiScaleGlow(IMAGE_SHAPE, num_levels=args.levels,
                                   num_steps=args.steps_per_level, coupling="affine",
                                   width=args.width, activation="relu", seed=0,
                                   network_dtype="bfloat16" if args.ours_precision == "mixed"
                                   else None)
    flow.initialize(frames)
    return flow.bijector, flow.trainable_variables


def build_tfp(args, frames):
    glow = tfb.Glow(
        output_shape=IMAGE_SHAPE, num_glow_blocks=args.levels,
        num_steps_per_block=args.steps_per_level,
        coupling_bijector_fn=lambda shape: tfb.GlowDefaultNetwork(shape, num_hidden=args.width),
        exit_bijector_fn=tfb.GlowDefaultExitNetwork, seed=0)
    glow.inverse(frames)  # its ActNorms initialise on the first call
    return glow, list(glow.trainable_variables)


def make_functions(bijector, variables, jit):
    size = int(np.prod(IMAGE_SHAPE))
    distribution = tfd.TransformedDistribution(
        tfd.Sample(tfd.Normal(tf.constant(0.0), 1.0), [size]), bijector)
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(variables)

    def loglik(x):
        return distribution.log_prob(x)

    def sample(z):
        return bijector.forward(z)

    def train(x):
        with tf.GradientTape() as tape:
            loss = -tf.reduce_mean(distribution.log_prob(x))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return {name: tf.function(fn, jit_compile=jit)
            for name, fn in (("loglik", loglik), ("sample", sample), ("train", train))}


def count(variables):
    return int(sum(np.prod(v.shape) for v in variables))


def network_flops_per_frame(args):
    """2 x multiply-adds of the coupling networks' convolutions for one frame, the
    work both flows share (over 97% of all of it) in one direction."""
    height, width, channels = IMAGE_SHAPE
    total = 0
    for level in range(args.levels):
        height, width, channels = height // 2, width // 2, channels * 4
        per_pixel = 9 * channels // 2 * args.width + args.width ** 2 + 9 * args.width * channels
        total += args.steps_per_level * height * width * per_pixel
        channels //= 2
    return 2 * total


def peak_matmul_gflops(repeats=10):
    """The machine's float32 rate on a large matrix product (an upper bound in practice)."""
    a = tf.random.stateless_normal([2048, 2048], [5, 6])
    product = tf.function(lambda: tf.matmul(a, a))
    product().numpy()
    best = min(timed(product) for _ in range(repeats))
    return 2 * 2048 ** 3 / best / 1e9


def convolution_bound(args, repeats):
    """Frames per second of the coupling networks' convolutions alone (one direction)."""
    seconds, (height, width, channels) = 0.0, IMAGE_SHAPE
    for level in range(args.levels):
        height, width, channels = height // 2, width // 2, channels * 4
        x = tf.random.stateless_normal([args.batch, height, width, channels // 2], [level, 7])
        kernels = [tf.random.stateless_normal(shape, [level, i]) * 0.05 for i, shape in
                   enumerate([(3, 3, channels // 2, args.width), (1, 1, args.width, args.width),
                              (3, 3, args.width, channels)])]

        @tf.function
        def network(x=x, kernels=kernels):
            h = tf.nn.relu(tf.nn.conv2d(x, kernels[0], 1, "SAME"))
            h = tf.nn.relu(tf.nn.conv2d(h, kernels[1], 1, "SAME"))
            return tf.nn.conv2d(h, kernels[2], 1, "SAME")

        network().numpy()
        best = min(timed(network) for _ in range(max(repeats, 5)))
        seconds += args.steps_per_level * best
        if level < args.levels - 1:
            channels //= 2
    return args.batch / seconds


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args).numpy()
    return time.perf_counter() - start


def main():
    args = parse_args()
    frames = tf.random.stateless_uniform([args.batch, *IMAGE_SHAPE], [1, 2], -0.5, 0.5)
    latents = tf.random.stateless_normal([args.batch, int(np.prod(IMAGE_SHAPE))], [3, 4])
    flows = {"ours": build_ours(args, frames), "tfp": build_tfp(args, frames)}
    params = {name: count(variables) for name, (_, variables) in flows.items()}
    jit = {"ours": args.jit in ("ours", "both"), "tfp": args.jit == "both"}
    functions = {name: make_functions(bijector, variables, jit[name])
                 for name, (bijector, variables) in flows.items()}
    modes = args.modes.split(",")
    rates = {name: {} for name in flows}
    cpu_rates = {name: {} for name in flows}  # per CPU-second: steadier on a busy machine
    trace_s = {name: {} for name in flows}
    for mode in modes:
        argument = latents if mode == "sample" else frames
        for name in flows:
            trace_s[name][mode] = round(timed(functions[name][mode], argument), 1)
        best, best_cpu = {}, {}
        for _ in range(args.repeats):
            for name in flows:
                cpu_start = time.process_time()
                elapsed = timed(functions[name][mode], argument)
                cpu = time.process_time() - cpu_start
                best[name] = min(best.get(name, elapsed), elapsed)
                best_cpu[name] = min(best_cpu.get(name, cpu), cpu)
        for name in flows:
            rates[name][mode] = args.batch / best[name]
            cpu_rates[name][mode] = args.batch / best_cpu[name]
        print(f"{mode}: ours {rates['ours'][mode]:.2f} frames/s, tfp {rates['tfp'][mode]:.2f} "
              f"frames/s", flush=True)
    ratios = {mode: rates["ours"][mode] / rates["tfp"][mode] for mode in modes}
    # training runs each network forward and backward: about three times the work
    work = {mode: network_flops_per_frame(args) * (3 if mode == "train" else 1) / 1e9
            for mode in modes}
    peak = peak_matmul_gflops()
    bound = convolution_bound(args, args.repeats)

    print(f"\n64x64x3, {args.levels} levels x {args.steps_per_level} steps, width "
          f"{args.width}, affine, relu; batch {args.batch}, best of {args.repeats}; "
          f"XLA: ours {jit['ours']}, tfp {jit['tfp']}; our networks {args.ours_precision}")
    print(f"parameters: ours {params['ours']:,}, tfp.bijectors.Glow {params['tfp']:,} "
          f"(ours/tfp {params['ours'] / params['tfp']:.3f})")
    print(f"network GFLOP/s: shared convolution work / time; machine's matmul rate "
          f"{peak:.0f} GFLOP/s")
    print(f"load average {os.getloadavg()[0]:.1f}; ratio (CPU): the ratio of frames per "
          f"CPU-second")
    print(f"{'direction':<10}{'ours fr/s':>11}{'tfp fr/s':>11}{'ratio':>8}{'ratio (CPU)':>13}"
          f"{'ours GFLOP/s':>14}{'tfp GFLOP/s':>13}")
    for mode in modes:
        cpu_ratio = cpu_rates["ours"][mode] / cpu_rates["tfp"][mode]
        print(f"{mode:<10}{rates['ours'][mode]:>11.2f}{rates['tfp'][mode]:>11.2f}"
              f"{ratios[mode]:>8.2f}{cpu_ratio:>13.2f}{rates['ours'][mode] * work[mode]:>14.0f}"
              f"{rates['tfp'][mode] * work[mode]:>13.0f}")
    print(f"convolution bound (loglik and sample): {bound:.2f} fr/s; of it, " + ", ".join(
        f"{mode} ours {rates['ours'][mode] / bound:.2f} tfp {rates['tfp'][mode] / bound:.2f}"
        for mode in modes if mode != "train"))
    result = {"config": {**vars(args), "image_shape": IMAGE_SHAPE, "coupling": "affine",
                         "activation": "relu", "dtype": "float32", "cpu_count": os.cpu_count()},
              "ours_precision": args.ours_precision,
              "xla": jit, "parameters": params, "frames_per_second": rates,
              "ratio_ours_over_tfp": ratios, "frames_per_cpu_second": cpu_rates,
              "cpu_ratio_ours_over_tfp": {mode: cpu_rates["ours"][mode] / cpu_rates["tfp"][mode]
                                          for mode in modes},
              "load_average": os.getloadavg(), "network_gflop_per_frame": work,
              "peak_matmul_gflops": peak, "convolution_bound_frames_per_second": bound,
              "first_call_s": trace_s}
    with open(args.out, "w") as file:
        json.dump(result, file, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
