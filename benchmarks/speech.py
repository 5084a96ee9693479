"""Speech benchmark: audio decoding and transcription speed, peak memory and accuracy on a narrated video.

Usage:
    python benchmarks/speech.py                   # 10-minute synthetic video, whisper-tiny.en on CPU
    python benchmarks/speech.py --model small.en  # another model (a store name, size or folder)

The video (cached with the other bench media) has a different sentence spoken by espeak-ng every 30 s
and silence in between, so the ground truth is exact. Every row runs in a fresh Python process so its
peak memory (max RSS) belongs to it alone; the model load is timed apart from the transcription.
Columns:
Each row is the median of --repeat runs (peak memory: the largest).
  decode s       decoding the audio track to 16 kHz mono (the whole track, as one array)
  load s         loading the model (excluded from the realtime factor)
  transcribe s   decoding and transcribing, chunk by chunk, as ``transcribe_video`` does
  x realtime     seconds of video per second of transcription
  recall         share of the spoken words found in segments overlapping their sentence
  extra words    words in segments that overlap no spoken sentence (text invented in silence)
  start err s    median |segment start - sentence start| over the sentences found
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from decode import bench_media_dir  # noqa: E402

from videoqa.testmedia.synth import SpokenLine, SynthSpec, pattern_scenes, render  # noqa: E402

SENTENCES = (
    "The red bicycle is leaning against the old stone wall.",
    "Please remember to water the tomato plants before you leave.",
    "Our train to the coast departs from the northern platform.",
    "A small orange cat is sleeping on the kitchen chair.",
    "The library closes early on public holidays.",
    "She painted the garden fence a bright shade of green.",
    "Turn left at the bakery and walk past the fountain.",
    "The museum has a new exhibition about ancient maps.",
    "Heavy rain is expected across the northern mountains tonight.",
    "He forgot his umbrella at the coffee shop again.",
    "The pilot announced that we will land very soon.",
    "Fresh bread and warm soup are served every evening.",
    "The children built a tall sand castle near the water.",
    "Keep the spare key in the blue box under the stairs.",
    "A family of ducks crossed the road this morning.",
    "The concert was moved to the large hall downstairs.",
    "Check the oil and the tyres before the long drive.",
    "The farmer sells honey and apples at the weekend market.",
    "Our new neighbour plays the violin beautifully.",
    "The last ferry leaves the island at sunset.",
)
INTERVAL_S = 30.0
FIRST_S = 12.0
# Rows: SpeechOptions fields, and the chunk length (speech.CHUNK_S, a product constant) to try.
CONFIGS: dict[str, tuple[dict[str, Any], float | None]] = {
    "vad on (default)": ({"vad": True}, None),
    "vad off": ({"vad": False}, None),
    "vad on, beam 1": ({"vad": True, "beam_size": 1}, None),
    "vad on, chunk 120 s": ({"vad": True}, 120.0),
}


def narrated_ten_minutes() -> tuple[Path, list[dict[str, Any]]]:
    """The 10-minute narrated video and its spoken spans (rendered once, then cached)."""
    path = bench_media_dir() / "synth-10min-narrated.mp4"
    if not path.exists():
        lines = tuple(SpokenLine(FIRST_S + index * INTERVAL_S, text) for index, text in enumerate(SENTENCES))
        spec = SynthSpec(scenes=pattern_scenes([60.0] * 10), speech=lines, width=320, height=180, fps=15.0)
        render(spec, path)
    spoken: list[dict[str, Any]] = json.loads(path.with_suffix(".json").read_text())["spoken"]
    return path, spoken


def measure(kind: str, path: str, config_json: str) -> dict[str, Any]:
    """One row in this process: timings, peak RSS and the segments found."""
    from videoqa.channels import speech
    from videoqa.media.video import probe

    info = probe(path)
    result: dict[str, Any] = {"duration_s": info.duration_s}
    if kind == "decode":
        start = time.perf_counter()
        result["samples"] = len(speech.decode_audio(info))
        result["decode_s"] = time.perf_counter() - start
    else:
        overrides, chunk_s = json.loads(config_json)
        speech.CHUNK_S = chunk_s or speech.CHUNK_S
        options = speech.SpeechOptions(**overrides)
        start = time.perf_counter()
        transcriber = speech.load_transcriber(options)
        result["load_s"] = time.perf_counter() - start
        start = time.perf_counter()
        transcript = speech.transcribe_video(info, options, transcriber=transcriber)
        result["transcribe_s"] = time.perf_counter() - start
        result["segments"] = [[s.start_s, s.end_s, s.text] for s in transcript.segments]
        result["threads"] = options.cpu_threads
        result["id"] = transcriber.id
    result["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def run_isolated(kind: str, path: Path, config: Any, repeat: int) -> dict[str, Any]:
    """The run with the median time of ``repeat``, each in a fresh process, with the largest peak RSS."""
    runs = []
    for _ in range(repeat):
        output = subprocess.run(
            [sys.executable, __file__, "--one", kind, str(path), json.dumps(config)],
            capture_output=True,
            text=True,
            check=False,
        )
        if output.returncode != 0:
            raise SystemExit(f"{kind} {config} failed: {output.stderr.strip()}")
        runs.append(json.loads(output.stdout))
    runs.sort(key=lambda run: float(run.get("transcribe_s", run.get("decode_s", 0.0))))
    row: dict[str, Any] = runs[len(runs) // 2]
    row["peak_mib"] = max(run["peak_mib"] for run in runs)
    return row


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def score(segments: list[list[Any]], spoken: list[dict[str, Any]]) -> dict[str, float]:
    """Word recall per sentence, words said in silence, and how far segment starts are from the truth."""
    found = total = 0
    errors = []
    used: set[int] = set()
    for span in spoken:
        near = [
            i
            for i, (start, end, _) in enumerate(segments)
            if start < span["end_s"] + 1.0 and end > span["start_s"] - 1.0
        ]
        used.update(near)
        heard = set(words(" ".join(segments[i][2] for i in near)))
        expected = words(span["text"])
        found += sum(word in heard for word in expected)
        total += len(expected)
        if near:
            errors.append(abs(segments[near[0]][0] - span["start_s"]))
    extra = sum(len(words(text)) for i, (_, _, text) in enumerate(segments) if i not in used)
    errors.sort()
    return {
        "recall": found / total,
        "extra_words": extra,
        "start_err_s": errors[len(errors) // 2] if errors else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--one", nargs=3, metavar=("KIND", "FILE", "CONFIG"), help=argparse.SUPPRESS)
    parser.add_argument("--model", default="whisper-tiny.en", help="speech model (default whisper-tiny.en)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    parser.add_argument("--json", type=Path, help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(*args.one)))
        return
    path, spoken = narrated_ten_minutes()
    decoded = run_isolated("decode", path, None, args.repeat)
    print(
        f"video: {path.name}, {decoded['duration_s']:.0f} s, {len(spoken)} sentences every "
        f"{INTERVAL_S:.0f} s; model {args.model}"
    )
    print(
        f"audio decode: {decoded['decode_s']:.2f} s ({decoded['duration_s'] / decoded['decode_s']:.0f}x "
        f"realtime), peak {decoded['peak_mib']:.0f} MiB, {decoded['samples']} samples"
    )
    rows = {"decode": decoded}
    for name, (overrides, chunk_s) in CONFIGS.items():
        rows[name] = run_isolated(
            "transcribe", path, [{"model": args.model, **overrides}, chunk_s], args.repeat
        )
        rows[name].update(score(rows[name]["segments"], spoken))
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'config':<22} {'load s':>6} {'transcribe s':>12} {'x realtime':>10} {'peak MiB':>8} "
        f"{'recall':>6} {'extra words':>11} {'start err s':>11}"
    )
    print(header)
    print("-" * len(header))
    for name in CONFIGS:
        row = rows[name]
        print(
            f"{name:<22} {row['load_s']:>6.2f} {row['transcribe_s']:>12.1f} "
            f"{row['duration_s'] / row['transcribe_s']:>10.1f} {row['peak_mib']:>8.0f} "
            f"{row['recall']:>6.1%} {row['extra_words']:>11} {row['start_err_s']:>11.2f}"
        )
    default = rows[next(iter(CONFIGS))]
    print(f"CPU threads: {default['threads']}; transcriber id: {default['id']}")


if __name__ == "__main__":
    main()
