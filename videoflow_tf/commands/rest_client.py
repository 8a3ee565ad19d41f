"""`videoflow-tf rest-client`: REST bodies for a VideoFlow SavedModel served by TF
Serving, and GIFs from its answers.

    videoflow-tf rest-client request [--model savedmodels/NAME] --video SOURCE \\
        [--signature serving_default|log_prob] [--temperature T] [--seed S] --out request.json
    curl -s -d @request.json http://localhost:8501/v1/models/NAME:predict > response.json
    videoflow-tf rest-client response --request request.json \\
        --response response.json --out future.gif

SOURCE is an .npy file (uint8 [T, H, W, 3] or [N, T, H, W, 3]), a GIF, or
`tfds:SPLIT[:INDEX]`, video INDEX (default 0) of a split of the model's dataset (prepared
with TFDS, in --data-dir). Frames must have the model's size (TFDS videos are resized).

The request is in TF Serving's columnar format, `{"signature_name": ..., "inputs": {...}}`:
for `serving_default` each video's first num_context_frames frames, the temperature and a
seed per video (S, S + 1, ...); for `log_prob` each video's first context + target frames.
`response` turns a `serving_default` answer into a GIF, a row per video, context frames
framed in orange and sampled ones in gray; for a `log_prob` answer it prints the scores.
The model's sizes come from the SavedModel's `assets/config.json` (`--model` may also name
the run it was exported from, or a checkpoint of it; by default it is the shipped
stochastic-shapes model). A request holds at least one video: JSON cannot carry the shape
of an empty batch.
"""
import json
import os

import numpy as np
from PIL import Image

from videoflow_tf.analysis import visualize
from videoflow_tf.data.videos import load_videos
from videoflow_tf.training.open_model import (LOG_PROB_SIGNATURE, SAMPLE_SIGNATURE, SHIPPED_MODEL,
                                              model_config)
from videoflow_tf.usage import (MODEL_KINDS, UsageError, add_data_dir, add_model, add_out,
                                add_seed, non_negative, output_file, positive)


def load_video(source, config, data_dir=None):
    """uint8 [N, T, H, W, 3] from an .npy file, a GIF or `tfds:SPLIT[:INDEX]`."""
    if source.startswith("tfds:"):
        split, _, index = source[len("tfds:"):].partition(":")
        scored = config.num_context_frames + config.num_target_frames
        return load_videos(config, split, 1, data_dir, num_frames=scored,
                           first=int(index or 0))
    if not os.path.isfile(source):
        raise UsageError(f"video {source!r} does not exist (expected an .npy file, a GIF "
                         "or tfds:SPLIT[:INDEX])")
    if source.lower().endswith(".npy"):
        video = np.load(source)
    elif source.lower().endswith(".gif"):
        with Image.open(source) as gif:
            video = np.stack([np.asarray(gif.convert("RGB")) for _ in _frames(gif)])
    else:
        raise UsageError(f"video {source!r} must be an .npy file, a GIF or tfds:SPLIT[:INDEX]")
    if (video.dtype != np.uint8 or video.ndim not in (4, 5)
            or video.shape[-3:] != config.image_shape):
        size = config.image_size
        raise UsageError(f"video {source!r} must be uint8 [T, {size}, {size}, 3] or [N, T, "
                         f"{size}, {size}, 3]; got {video.dtype} {list(video.shape)}")
    video = video[None] if video.ndim == 4 else video
    if not len(video):
        raise UsageError(f"video {source!r} holds no videos: a request needs at least one "
                         "(JSON cannot carry the shape of an empty batch)")
    return video


def _frames(gif):
    for index in range(gif.n_frames):
        gif.seek(index)
        yield index


def request_body(video, config, signature=SAMPLE_SIGNATURE, temperature=None, seed=0):
    """The `:predict` body (a dict) for uint8 videos [N, T, H, W, 3]."""
    frames = config.num_context_frames + (config.num_target_frames
                                          if signature == LOG_PROB_SIGNATURE else 0)
    if video.shape[1] < frames:
        raise UsageError(f"{signature} needs {frames} frames per video; the video has "
                         f"{video.shape[1]}")
    if signature == LOG_PROB_SIGNATURE:
        inputs = {"video": video[:, :frames].tolist()}
    else:
        temperature = config.temperature if temperature is None else temperature
        inputs = {"context": video[:, :frames].tolist(),
                  "temperature": [float(temperature)] * len(video),
                  "seed": [int(seed) + index for index in range(len(video))]}
    return {"signature_name": signature, "inputs": inputs}


def decode_response(body, request):
    """{output name: numpy array} from a `:predict` answer to `request` (both dicts)."""
    if "error" in body:
        raise UsageError(f"the model server answered with an error: {body['error']}")
    if "outputs" not in body:
        raise UsageError("not a columnar :predict answer: it has no 'outputs' (send "
                         "the request with 'inputs', not 'instances')")
    outputs = body["outputs"]
    signature = request["signature_name"]
    # TF Serving leaves out the name of a signature's only output: serving_default's frames.
    named = outputs if isinstance(outputs, dict) else {"frames": outputs}
    expected = ["frames"] if signature == SAMPLE_SIGNATURE else ["bits_per_pixel", "log_prob"]
    missing = [name for name in expected if name not in named]
    if missing:
        raise UsageError(f"the answer has outputs {sorted(named)}, not the {expected} of a "
                         f"{signature} answer: is it the answer to another request?")
    if signature == SAMPLE_SIGNATURE:
        return {"frames": np.asarray(named["frames"], np.uint8)}
    return {name: np.asarray(value, np.float64) for name, value in named.items()}


def response_gif(path, request, outputs, frame_ms=300):
    """Writes the context and sampled frames of every video as one GIF, a row each."""
    context = np.asarray(request["inputs"]["context"], np.uint8)
    videos = np.concatenate([context, outputs["frames"]], axis=1)
    scale = visualize.default_scale(context.shape[2])
    visualize.save_gif(path, visualize.video_grid(videos[:, None], context.shape[1], scale),
                       frame_ms=frame_ms)


def add_arguments(parser):
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True,
                                    help="request: a :predict body from a video; response: a "
                                    "GIF (or scores) from the answer to one")
    request = actions.add_parser("request", help="a :predict request body from a video")
    add_model(request, default=SHIPPED_MODEL,
              help=f"the model whose sizes and default temperature the request takes, "
              f"usually the SavedModel the server serves: {MODEL_KINDS}")
    request.add_argument("--video", required=True, metavar="SOURCE",
                         help="an .npy file, a GIF or tfds:SPLIT[:INDEX]")
    request.add_argument("--signature", default=SAMPLE_SIGNATURE,
                         choices=(SAMPLE_SIGNATURE, LOG_PROB_SIGNATURE),
                         help="the signature to call (default: %(default)s)")
    request.add_argument("--temperature", type=non_negative(float), metavar="T",
                         help="sampling temperature (default: the model config's)")
    add_seed(request, "seed of the first video; video i gets S + i")
    add_data_dir(request, default="TFDS's: ~/tensorflow_datasets or $TFDS_DATA_DIR")
    add_out(request, "FILE.json", "where to write the request body")
    response = actions.add_parser("response", help="a GIF (or scores) from an answer")
    response.add_argument("--request", required=True, metavar="FILE.json",
                          help="the request body the answer is for")
    response.add_argument("--response", required=True, metavar="FILE.json",
                          help="the server's answer")
    add_out(response, "FILE.gif", "the GIF of a serving_default answer (needed for one)",
            required=False)
    response.add_argument("--frame-ms", type=positive(int), default=300, metavar="MS",
                          help="GIF frame duration in milliseconds (default: %(default)s)")


def run(args):
    (write_request if args.action == "request" else read_response)(args)


def write_request(args):
    output_file(args.out, (".json",))
    config = model_config(args.model)
    video = load_video(args.video, config, args.data_dir)
    body = request_body(video, config, args.signature, args.temperature, args.seed)
    with open(args.out, "w", encoding="utf-8") as file:
        json.dump(body, file)
    print(f"Wrote {args.out}: a {args.signature} request for {len(video)} video(s)")


def read_response(args):
    request, body = (_read_json(path) for path in (args.request, args.response))
    outputs = decode_response(body, request)
    if request["signature_name"] == LOG_PROB_SIGNATURE:
        for index, bpp in enumerate(outputs["bits_per_pixel"]):
            print(f"video {index}: {bpp:.4f} bits per pixel, log p = "
                  f"{outputs['log_prob'][index]:.2f} nats")
        return
    if args.out is None:
        raise UsageError("--out FILE.gif is needed for a serving_default answer")
    output_file(args.out, (".gif",))
    response_gif(args.out, request, outputs, args.frame_ms)
    frames = outputs["frames"]
    print(f"Wrote {args.out}: {frames.shape[1]} sampled frames for {len(frames)} video(s)")


def _read_json(path):
    if not os.path.isfile(path):
        raise UsageError(f"{path!r} does not exist")
    with open(path, encoding="utf-8") as file:
        try:
            return json.load(file)  # Python's json reads TF Serving's NaN and Infinity
        except json.JSONDecodeError as error:
            raise UsageError(f"{path} is not JSON: {error}") from None

