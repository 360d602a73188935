"""Turns the results dict into results.json, results.md and the benchmark page (docs/benchmarks.md)."""
from __future__ import annotations

from pathlib import Path

from deepfake_detector.benchmarks.errors import MissingMarkersError
from deepfake_detector.benchmarks.latency import batch_throughput
from deepfake_detector.benchmarks.timing import ratio
from deepfake_detector.utils.files import write_json_atomic, write_text_atomic
from deepfake_detector.utils.markdown_markers import MarkerError, Markers, find_block, write_blocks

BENCH_MARKERS = Markers.named("bench")
MISSING = "–"
FEED_LABELS = {"files": "JPEG files (trainer's tf.data)", "memory": "in memory",
               "memory_augmented": "in memory + augmentation"}


def _number(value, digits: int = 1, suffix: str = "") -> str:
    return MISSING if value is None else f"{value:.{digits}f}{suffix}"


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    rule = ["---" if a == "l" else "---:" for a in align]
    return [f"| {' | '.join(header)} |", f"| {' | '.join(rule)} |", *(f"| {' | '.join(r)} |" for r in rows)]


def machine_line(results: dict) -> str:
    machine, versions = results["machine"], results["machine"]["versions"]
    flags = [name for name, present in machine["flags"].items() if present]
    mhz = f" @ {machine['cpu_mhz'] / 1000:.2f} GHz" if machine["cpu_mhz"] else ""
    commit = (machine["git_commit"] or "unknown")[:7]
    return (f"Measured on {machine['cpu_model']}, {machine['cores']} cores{mhz} ({', '.join(flags) or 'no AVX2'}); "
            f"Python {versions['python']}, TensorFlow {versions['tensorflow']}, Keras {versions['keras']}, "
            f"ai-edge-litert {versions['ai-edge-litert']}; {machine['date'][:10]}, commit {commit}.")


def _inference(results: dict) -> list[str]:
    section, settings = results["inference"], results["settings"]
    model = results["model"]
    batch = settings["batch_size"]
    rows = []
    for row in section["rows"]:
        rows.append([
            row["name"], _number(row["single"]["p50_ms"], 2), _number(row["single"]["p95_ms"], 2),
            _number(row["speedup_p50_vs_keras_predict"], 2, "x"),
            _number(batch_throughput(row)),
            _number(row["batch_throughput_vs_keras_predict"], 2, "x"),
            _number(row["roofline"]["gflops"]), _number(row["roofline"]["percent_of_peak"], 1, "%"),
        ])
    lines = [f"**Inference**: {model['image_size']} px, {model['flops_per_image'] / 1e9:.2f} GFLOP per image; "
             f"single image p50/p95 over {settings['single_reps']} calls (load per request: "
             f"{settings['load_reps']}), batch of {batch} the median of {settings['batch_reps']}; LiteRT with "
             f"{section['tflite_threads']} threads.", ""]
    lines += _table(["runtime", "p50 ms", "p95 ms", "speed-up vs Keras predict", f"batch-{batch} img/s",
                     "vs Keras predict", "GFLOP/s", "% of peak"], rows)
    if section["skipped"]:
        notes = "; ".join(f"{s['variant']} ({s['reason']})" for s in section["skipped"])
        lines += ["", f"Not measured: {notes}."]
    return lines


def _preprocessing(results: dict) -> list[str]:
    section = results["preprocessing"]
    labels = {"pillow": "Pillow (`load_image`, serving)", "tensorflow": "TensorFlow (`decode_and_fit`, training)"}
    fits = {"resize": section["paths"], "crop": section.get("crop_paths", {})}
    rows = [[labels[name], fit, _number(stats["p50_ms"], 2), _number(stats["p95_ms"], 2)]
            for fit, paths in fits.items() for name, stats in paths.items()]
    lines = [f"**Preprocessing**: {section['source']} to {section['image_size']} px model input, decoded by "
             "libjpeg-turbo on both sides (accurate integer IDCT).", "",
             *_table(["path", "fit", "p50 ms", "p95 ms"], rows, "llrr")]
    if "target_ms" in section:
        lines += ["", f"Target: serving p50 at most {section['target_ms']} ms; TensorFlow / Pillow p50 (resize): "
                      f"{_number(section['tensorflow_over_pillow_p50'], 2, 'x')}."]
    refusal = section.get("oversized_header_refusal")
    if refusal:
        lines += ["", f"Refusing a {refusal['claimed']} header (a decompression bomb) before decoding: "
                      f"p50 {_number(refusal['p50_ms'], 3)} ms."]
    return lines


def _memory(results: dict) -> list[str]:
    section = results["memory"]
    rows = [[backend, _number(p["peak_rss_mib"], 0), _number(p["import_s"], 2), _number(p["load_s"], 2),
             _number(p["time_to_first_prediction_s"], 2), "yes" if p["tensorflow_imported"] else "no"]
            for backend, p in section["processes"].items()]
    return [f"**One serving process** (fresh interpreter, {section['images_per_process']} predictions of a JPEG):",
            "", *_table(["backend", "peak RSS MiB", "import s", "load s", "first prediction s",
                         "TensorFlow imported"], rows, "lrrrrl"), "",
            f"Peak RSS keras / tflite: {_number(section['rss_ratio_keras_over_tflite'], 2, 'x')} "
            "(target: at least 3x).", *_large_jpeg(section.get("large_jpeg"))]


def _large_jpeg(section: dict | None) -> list[str]:
    if not section:
        return []
    full = section["peak_extra_mib"]["full decode + resize"]
    rows = [[f"`load_image`, fit {fit}", _number(section["peak_extra_mib"][fit], 0),
             _number(section["ratio_to_full_decode"][fit], 2, "x")] for fit in ("resize", "crop")]
    rows.append(["full decode, upright, resize (before)", _number(full, 0), "1.00x"])
    return ["", f"**One {section['image']}** into {section['image_size']} px model input (fresh interpreter each):",
            "", *_table(["path", "peak extra MiB", "vs full decode"], rows),
            "", f"Target: at most {section['target_mib']} MiB of peak extra memory."]


def _threads(results: dict) -> list[str]:
    section = results["threads"]
    if "skipped" in section:
        return [f"**Thread safety**: not measured ({section['skipped']})."]
    labels = {"per_thread_interpreters": "an interpreter per thread",
              "single_interpreter_locked": "one interpreter behind a lock"}
    modes = section["modes"]
    first = next(iter(modes.values()))
    rows = [[labels[name], _number(m["requests_per_s"]), _number(m["latency"]["p50_ms"], 2),
             _number(m["latency"]["p95_ms"], 2)] for name, m in modes.items()]
    return [f"**Thread safety**: LiteRT float32 ({section['interpreter_threads']} threads each), {first['clients']} "
            f"client threads sending {first['requests']} single-image requests in all.", "",
            *_table(["mode", "requests/s", "p50 ms", "p95 ms"], rows), "",
            f"Per-thread / locked throughput: {_number(section['per_thread_over_locked'], 2, 'x')}."]


def _serving(results: dict) -> list[str]:
    section = results.get("serving")
    if not section:
        return ["**API**: not measured."]
    load = next((row for row in results["inference"]["rows"] if row["name"] == "load per request"), None)
    load_p50 = load["single"]["p50_ms"] if load else None
    api, bare = section["api_single_client"], section["bare_in_process"]
    bare_p50 = bare["p50_ms"]

    def row(path: str, measured: dict | None, requests_per_s: float | None = None) -> list[str]:
        if measured is None:
            return [path, "–", "–", "–", "–"]
        rate = requests_per_s if requests_per_s is not None else 1000.0 / measured["p50_ms"]
        return [path, _number(measured["p50_ms"], 2), _number(measured["p95_ms"], 2), _number(rate),
                _number(measured["p50_ms"] / bare_p50, 2, "x")]

    concurrent = section["api_concurrent"]
    all_cores = section.get("bare_all_cores")
    rows = [
        [f"bare in-process decode + predict (`DetectionService.analyze`), as a worker runs it "
         f"({_thread_count(bare.get('interpreter_threads'))})", _number(bare_p50, 2),
         _number(bare["p95_ms"], 2), "–", "1.00x"],
        *([[f"bare, one process alone ({_thread_count(all_cores['interpreter_threads'])})",
            _number(all_cores["p50_ms"], 2), _number(all_cores["p95_ms"], 2), "–",
            _number(all_cores["p50_ms"] / bare_p50, 2, "x")]] if all_cores else []),
        row("`POST /api/v1/predict` to gunicorn, multipart, one client", api),
        row("gunicorn, raw body, one client", section.get("api_raw_single_client")),
        row(f"gunicorn, multipart, {concurrent['clients']} clients at once", concurrent, concurrent["requests_per_s"]),
    ]
    full_stack = section.get("full_stack") or {"skipped": "not measured in this run"}
    if "skipped" not in full_stack:
        crowd = full_stack["concurrent"]
        rows += [row("nginx + gunicorn (full stack), multipart, one client", full_stack["single_client"]),
                 row("full stack, raw body, one client", full_stack.get("single_client_raw")),
                 row(f"full stack, multipart, {crowd['clients']} clients at once", crowd, crowd["requests_per_s"])]
        crowd_raw = full_stack.get("concurrent_raw")
        if crowd_raw:
            rows.append(row(f"full stack, raw body, {crowd_raw['clients']} clients at once", crowd_raw,
                            crowd_raw["requests_per_s"]))
        ceiling = full_stack.get("bare_wsgi")
        if ceiling and "skipped" not in ceiling:
            rows.append(row(f"full stack serving a bare WSGI app (decode + predict only), raw body, "
                            f"{ceiling['clients']} clients at once", ceiling, ceiling["requests_per_s"]))
    rows.append(["load the .h5, then predict, per request (the original app)", _number(load_p50, 1), "–",
                 _number(1000.0 / load_p50 if load_p50 else None, 2),
                 _number(load_p50 / bare_p50 if load_p50 else None, 0, "x")])
    speedup = load_p50 / api["p50_ms"] if load_p50 else None
    return [f"**API**: one {section['image']} through gunicorn on 127.0.0.1 ({section['workers']} workers x "
            f"{section['threads']} threads, `{section['backend']}` backend, variant `{section.get('variant', '?')}`, "
            "face cropping off), and through nginx in front of it as in the container (deploy/nginx/); server-side "
            f"p50 {_number(section['api_server_side']['p50_ms'], 2)} ms. Clients post on keep-alive connections "
            "(http.client), so that the load generator takes little of the cores it shares with the server. The "
            f"one-client rows and the bare calls are timed in {results['settings'].get('api_reps', '?')} interleaved "
            "rounds, so a busy spell on the machine slows them alike; ratios are to the bare call as a worker runs "
            "it, the same inference the server runs.", "",
            *_table(["path", "p50 ms", "p95 ms", "requests/s", "p50 vs bare"], rows), "",
            _full_stack_line(full_stack, bare_p50),
            f"The API answers {_number(speedup, 0, 'x')} faster than loading the model per request."]


def _faces(results: dict) -> list[str]:
    section = results.get("faces") or {"skipped": "not measured in this run"}
    if "skipped" in section:
        return [f"**Faces**: not measured ({section['skipped']})."]
    set_names = list(section["sets"])
    rows = []
    for name, detector in section["detectors"].items():
        timings, found = detector["timings"], detector["found"]
        rows.append([f"`{name}`", _number(timings["native"]["p50_ms"], 2), _number(timings["aligned"]["p50_ms"], 2),
                     *(f"{found[set_name]['found']}/{found[set_name]['total']}" for set_name in set_names)])
    header = ["detector", "detect + native crop p50 ms", "detect + aligned crop p50 ms",
              *(f"{set_name}: {'found' if section['sets'][set_name]['faces_expected'] else 'false alarms'}"
                for set_name in set_names)]
    return [f"**Faces**: BlazeFace on LiteRT ({_thread_count(section['interpreter_threads'])}, a worker's share) "
            f"finding the face in a {section['image']} and cropping it with `crop_face`; then what each detector "
            "finds in pictures every installation has offline (scikit-image's and matplotlib's sample photographs, "
            "LFW patches enlarged to 128 px, the demo generator's scenes).", "",
            *_table(header, rows), "", f"Target: detection + alignment at most {section['target_ms']:g} ms."]


def _video(results: dict) -> list[str]:
    section = results.get("video") or {"skipped": "not measured in this run"}
    if "skipped" in section:
        return [f"**Video**: not measured ({section['skipped']})."]
    clip = section["clip"]
    rows = []
    for faces, row in section["rows"].items():
        short, long = row["short"], row["long"]
        p50 = float(sorted(short["seconds"])[len(short["seconds"]) // 2])
        rows.append([f"`{faces}`", _number(p50, 2), _number(p50 / section["target_s"], 2, "x"),
                     f"{short['frames']} ({short['frames_with_face']} with a face)",
                     _number(short["timings_ms"]["decode"] / 1000, 2),
                     _number(short["timings_ms"]["predict"] / 1000, 2),
                     _number(short["analysis_extra_mib"], 0), _number(long["analysis_extra_mib"], 0),
                     _number(short["peak_rss_mib"], 0), _number(long["peak_rss_mib"], 0)])
    header = ["serve.face_detector", f"{clip['seconds']:g} s clip: verdict p50 s", "vs target",
              "frames scored", "decode s", "predict s", "analysis adds MiB",
              f"{section['long_clip_seconds']:g} s clip: analysis adds MiB", "process peak RSS MiB",
              f"{section['long_clip_seconds']:g} s clip: process peak RSS MiB"]
    return [f"**Video**: a {clip['seconds']:g}-second {clip['width']}x{clip['height']} {clip['fps']} fps H.264 clip "
            f"({clip['bitrate'] / 1e6:g} Mbit/s, the demo generator's moving face) posted to `/api/v1/predict` "
            "(the Flask app in a fresh process, no socket), with the default frame sampling. \"Analysis adds\" is the "
            "peak RSS one analysis adds to the loaded server with the upload in memory (the decoder, one frame at a "
            "time, the model inputs); the longer clip, in a process of its own, shows it does not grow with the "
            "clip's length. The process peak also holds the upload's copies on both sides of the in-process client "
            "(capped by serve.max_request_mb in a real server).", "",
            *_table(header, rows), "", f"Target: a verdict in at most {section['target_s']:g} s on 2 cores."]


def _thread_count(count: int | None) -> str:
    return "interpreter threads unknown" if count is None else f"{count} interpreter thread{'s' * (count != 1)}"


def _full_stack_line(full_stack: dict, bare_p50_ms: float) -> str:
    if "skipped" in full_stack:
        return f"Full stack: not measured ({full_stack['skipped']})."
    single, crowd = full_stack["single_client"], full_stack["concurrent"]
    line = (f"Full stack (nginx + gunicorn), multipart: p50 {_number(single['p50_ms'], 2)} ms, "
            f"{_number(full_stack['p50_vs_bare_p50'], 2, 'x')} the bare {_number(bare_p50_ms, 2)} ms (targets: at most "
            f"10 ms on 2 cores and 1.5x); {crowd['clients']} clients: {_number(crowd['requests_per_s'])} requests/s, "
            f"{_number(100 * full_stack['throughput_vs_target'], 0, '%')} of the target "
            f"{_number(full_stack['target_requests_per_s'])} ({full_stack['target_share']:.0%} of "
            f"{full_stack['cores']} cores x 1000 / the bare ms timed just before the run, "
            f"{_number(crowd.get('bare_p50_ms'), 2)}; {crowd['refused']} requests refused with 503 and sent "
            f"again; the median of {len(crowd.get('runs_requests_per_s', [0]))} runs: "
            f"{_runs(crowd)}).")
    raw, crowd_raw = full_stack.get("single_client_raw"), full_stack.get("concurrent_raw")
    if raw and crowd_raw:
        line += (f" Raw body: p50 {_number(raw['p50_ms'], 2)} ms, "
                 f"{_number(full_stack['raw_p50_vs_bare_p50'], 2, 'x')} the bare; {crowd_raw['clients']} clients: "
                 f"{_number(crowd_raw['requests_per_s'])} requests/s, "
                 f"{_number(100 * full_stack['raw_throughput_vs_target'], 0, '%')} of its target "
                 f"{_number(crowd_raw.get('target_requests_per_s'))} ({crowd_raw['refused']} refused and sent again; "
                 f"runs: {_runs(crowd_raw)}).")
    ceiling = full_stack.get("bare_wsgi")
    if ceiling and "skipped" in ceiling:
        line += f"\n\n**The server's ceiling**: not measured ({ceiling['skipped']})."
    elif ceiling:
        line += ("\n\n**The server's ceiling**: the same gunicorn and nginx serving `benchmarks/bare_wsgi_app.py` "
                 "instead of the app (it reads the raw body, decodes and predicts, and answers; no Flask, routing, "
                 "logging, metrics or admission control, so up to a worker's threads predict at once, each interpreter "
                 f"with the app's threads), {ceiling['clients']} clients: "
                 f"{_number(ceiling['requests_per_s'])} requests/s, "
                 f"{_number(100 * ceiling['vs_target'], 0, '%')} of its target "
                 f"{_number(ceiling['target_requests_per_s'])} (runs: {_runs(ceiling)}). That is the most this "
                 "server, proxy and load generator leave any app on these cores; the app gets "
                 f"{_percent(ratio(crowd['requests_per_s'], ceiling['requests_per_s']))} of it with multipart bodies"
                 + (f" and {_percent(ratio(crowd_raw['requests_per_s'], ceiling['requests_per_s']))} with raw bodies"
                    if crowd_raw else "") + ".")
    return line


def _percent(share: float | None) -> str:
    return _number(None if share is None else 100 * share, 0, "%")


def _runs(crowd: dict) -> str:
    """Every throughput run: requests/s and its share of the target timed beside it."""
    shares = crowd.get("runs_vs_target") or [None] * len(crowd.get("runs_requests_per_s", []))
    return ", ".join(f"{_number(rate)} requests/s = {_number(None if share is None else 100 * share, 0, '%')}"
                     for rate, share in zip(crowd.get("runs_requests_per_s", []), shares, strict=True))


def _training(results: dict) -> list[str]:
    section = results["training"]
    if "skipped" in section:
        return [f"**Training input pipeline**: not measured ({section['skipped']})."]
    rows = []
    for phase, measured in section["phases"].items():
        memory_rate = measured["feeds"]["memory"]["images_per_s"]
        for feed in ("files", "memory", "memory_augmented"):
            stats = measured["feeds"][feed]
            rows.append([phase, FEED_LABELS[feed], _number(stats["images_per_s"]), _number(stats["step"]["p50_ms"], 0),
                         _number(stats["first_step_s"], 1), _number(stats["images_per_s"] / memory_rate, 2, "x")])
    return [f"**Training input pipeline**: batch {section['batch_size']}, {section['image_size']} px, "
            f"{section['steps']} timed steps after {section['warmup_steps']} warm-up per phase and feed (augmentation "
            f"{'on' if section['augmentation'] else 'off'}, cache {'on' if section['cache'] else 'off'}); "
            "first step: tracing (first feed) or filling the shuffle buffer.", "",
            *_table(["phase", "feed", "images/s", "step p50 ms", "first step s", "vs in memory"], rows, "llrrrr"), "",
            f"Target: JPEG files / in memory at least {section['target_files_over_memory']}. With the same "
            "augmentation on both sides, the cost of feeding from files alone: "
            + ", ".join(f"{phase} {_number(_files_over_augmented(m['feeds']), 2, 'x')}"
                        for phase, m in section["phases"].items()) + "."]


def _files_over_augmented(feeds: dict) -> float:
    return feeds["files"]["images_per_s"] / feeds["memory_augmented"]["images_per_s"]


def _contention_note(section: dict, threshold: float) -> list[str]:
    share = section.get("other_processes_cpu_share")
    if share is None or share <= threshold:
        return []
    return ["", f"Caution: other processes used {100 * share:.0f}% of the CPU while this was measured; these "
                "numbers are pessimistic."]


def render_tables(results: dict) -> str:
    """The Markdown body shared by results.md and the README section: machine line, then tables."""
    threshold = results.get("contention_warning_share", 0.1)
    sections = (("inference", _inference), ("preprocessing", _preprocessing), ("memory", _memory),
                ("serving", _serving), ("faces", _faces), ("video", _video), ("threads", _threads),
                ("training", _training))
    parts = [[machine_line(results)]]
    parts += [render(results) + _contention_note(results[name], threshold) for name, render in sections]
    parts.append([f"**Roofline**: {results['roofline']['assumption']}. GFLOP/s = images/s (batch, else 1 / p50) x "
                  "FLOP per image; int8 rows are held against the same fp32 peak."])
    return "\n\n".join("\n".join(part) for part in parts) + "\n"


def write_results(results: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    json_file = write_json_atomic(out_dir / "results.json", results)
    markdown_file = write_text_atomic(out_dir / "results.md", "# Benchmarks\n\n" + render_tables(results))
    return json_file, markdown_file


def find_markers(readme: Path) -> None:
    """Raise unless the page has the bench markers exactly once each and in order (checked before
    measuring, so a bad page fails fast)."""
    readme = Path(readme)
    if not readme.is_file():
        raise MissingMarkersError(f"{readme}: file not found")
    try:
        find_block(readme.read_text(encoding="utf-8").splitlines(), BENCH_MARKERS, readme)
    except MarkerError as error:
        raise MissingMarkersError(str(error)) from None


def update_readme(readme: Path, tables: str) -> Path:
    """Replace what lies between the bench markers, keeping the marker lines and everything else."""
    find_markers(readme)
    return write_blocks(Path(readme), {BENCH_MARKERS: tables})
