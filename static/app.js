// The upload page: choose or drop a photo or a video, preview it, send it to /api/v1/predict, show the answer
// (for a video: the verdict, a timeline of every scored frame's P(fake) and the most fake frames).
// Plain browser JavaScript with no dependencies, so the page works offline.
"use strict";

(function () {
  const ACCEPTED_TYPES = ["image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp"];
  const ACCEPTED_EXTENSIONS = [".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp"];
  const VIDEO_TYPES = ["video/mp4", "video/quicktime", "video/webm", "video/x-msvideo", "video/avi", "video/x-matroska"];
  const VIDEO_EXTENSIONS = [".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"];
  const SVG = "http://www.w3.org/2000/svg";
  const PREDICT_URL = "/api/v1/predict?explain=true";

  const config = JSON.parse(document.getElementById("page-config").textContent || "{}");
  const limits = config.limits || {};
  const maxBytes = (limits.max_request_mb || 16) * 1024 * 1024;
  const maxPixels = limits.max_image_pixels || 0;

  const $ = (id) => document.getElementById(id);
  const fileInput = $("file-input");
  const dropZone = $("drop-zone");
  const fileName = $("file-name");
  const analyzeButton = $("analyze-button");
  const errorBox = $("error");
  const preview = $("preview");
  const previewEmpty = $("preview-empty");
  const stage = $("stage");
  const previewImage = $("preview-image");
  const previewVideo = $("preview-video");
  const timeline = $("timeline");
  const timelineChart = $("timeline-chart");
  const worstFrames = $("worst-frames");
  const heatmap = $("heatmap");
  const faceBoxes = $("face-boxes");
  const heatmapToggle = $("heatmap-toggle");
  const heatmapToggleLabel = $("heatmap-toggle-label");
  const heatmapMethod = $("heatmap-method");
  const heatmapLegend = $("heatmap-legend");
  const result = $("result");
  const resultIdle = $("result-idle");
  const resultBody = $("result-body");

  let currentFile = null;
  let previewUrl = null;
  let requestNumber = 0;

  function percent(probability) {
    return (probability * 100).toFixed(2) + " %";
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearError() {
    errorBox.textContent = "";
    errorBox.hidden = true;
  }

  function resetResult() {
    result.dataset.state = "idle";
    resultBody.hidden = true;
    resultIdle.hidden = false;
    resultIdle.textContent = currentFile ? "Press Analyze to score this photo." : "Choose a photo and press Analyze.";
    $("verdict").textContent = "";
    $("verdict").className = "verdict";
    $("fake-probability").textContent = "";
    $("threshold").textContent = "";
    heatmap.hidden = true;
    heatmap.removeAttribute("src");
    heatmapToggleLabel.hidden = true;
    heatmapLegend.hidden = true;
    faceBoxes.replaceChildren();
    timeline.hidden = true;
    timelineChart.replaceChildren();
    worstFrames.replaceChildren();
    $("timeline-summary").textContent = "";
  }

  function isVideo(file) {
    const name = file.name.toLowerCase();
    return VIDEO_TYPES.includes(file.type) || VIDEO_EXTENSIONS.some((extension) => name.endsWith(extension));
  }

  // Client-side checks save a pointless upload; the server repeats them and has the last word.
  function checkFile(file) {
    const name = file.name.toLowerCase();
    const knownType = ACCEPTED_TYPES.includes(file.type);
    const knownExtension = ACCEPTED_EXTENSIONS.some((extension) => name.endsWith(extension));
    if (!knownType && !knownExtension && !isVideo(file)) {
      return `${file.name}: not a supported image type (JPEG, PNG, GIF, BMP or WebP) or video (MP4, MOV, WebM or AVI).`;
    }
    if (file.size === 0) {
      return `${file.name}: the file is empty.`;
    }
    if (file.size > maxBytes) {
      const megabytes = (file.size / 1024 / 1024).toFixed(1);
      return `${file.name}: ${megabytes} MB is too large (at most ${limits.max_request_mb || 16} MB).`;
    }
    return null;
  }

  function selectFile(file, analyzeNow) {
    clearError();
    const problem = checkFile(file);
    if (problem) {
      showError(problem);
      return false;
    }
    currentFile = file;
    fileName.textContent = `Chosen: ${file.name}`;
    if (previewUrl) {
      URL.revokeObjectURL(previewUrl);
    }
    previewUrl = URL.createObjectURL(file);
    previewImage.style.imageOrientation = "";
    sizeStage(1, 1);
    const video = isVideo(file);
    previewImage.hidden = video;
    previewVideo.hidden = !video;
    if (video) {
      previewImage.removeAttribute("src");
      previewVideo.src = previewUrl;
      previewVideo.setAttribute("aria-label", `Preview of ${file.name}`);
    } else {
      previewVideo.pause();
      previewVideo.removeAttribute("src");
      previewVideo.load();  // drops the previous video's decoder and buffered frames
      previewImage.src = previewUrl;
      previewImage.alt = `Preview of ${file.name}`;
    }
    stage.hidden = false;
    previewEmpty.hidden = true;
    preview.dataset.state = "loading";
    analyzeButton.disabled = false;
    resetResult();
    if (analyzeNow) {
      analyze();
    }
    return true;
  }

  // Scales the preview up or down to fit the panel and the window, keeping the photo's proportions.
  function sizeStage(width, height) {
    const ratio = width / height;
    stage.style.width = `min(100%, calc(60vh * ${ratio}), 640px)`;
    previewImage.style.aspectRatio = `${width} / ${height}`;
  }

  previewImage.addEventListener("load", () => {
    preview.dataset.state = "ready";
    sizeStage(previewImage.naturalWidth, previewImage.naturalHeight);
    const pixels = previewImage.naturalWidth * previewImage.naturalHeight;
    if (maxPixels && pixels > maxPixels) {
      showError(`${currentFile.name}: ${previewImage.naturalWidth}×${previewImage.naturalHeight} pixels is too large ` +
        `(at most ${maxPixels.toLocaleString()} pixels).`);
    }
  });

  previewVideo.addEventListener("loadedmetadata", () => {
    preview.dataset.state = "ready";
    sizeStage(previewVideo.videoWidth || 16, previewVideo.videoHeight || 9);
  });

  previewVideo.addEventListener("error", () => {
    // This browser may lack the codec; the server decodes the video itself.
    if (previewVideo.getAttribute("src")) {
      preview.dataset.state = "unreadable";
    }
  });

  previewImage.addEventListener("error", () => {
    // Not fatal: the browser may not display a format the server reads; the server decides.
    preview.dataset.state = "unreadable";
    if (currentFile) {
      previewImage.alt = `${currentFile.name} cannot be displayed by this browser`;
    }
  });

  async function readError(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) {
        return body.error.message;
      }
    } catch (ignored) {
      // Not JSON (a proxy's error page, for example): fall through to the status line.
    }
    return `The server answered ${response.status} ${response.statusText || ""}`.trim() + ".";
  }

  async function analyze() {
    if (!currentFile) {
      showError("Choose a photo first.");
      return;
    }
    clearError();
    const thisRequest = ++requestNumber;
    const form = new FormData();
    form.append("file", currentFile, currentFile.name);
    analyzeButton.disabled = true;
    analyzeButton.textContent = "Analyzing…";
    result.dataset.state = "busy";
    result.setAttribute("aria-busy", "true");
    resultBody.hidden = true;
    resultIdle.hidden = false;
    resultIdle.textContent = "Analyzing…";
    try {
      let response;
      try {
        response = await fetch(PREDICT_URL, { method: "POST", body: form, headers: { Accept: "application/json" } });
      } catch (networkError) {
        throw new Error("Could not reach the server. Check that it is running and try again.");
      }
      if (!response.ok) {
        throw new Error(await readError(response));
      }
      const body = await response.json();
      if (thisRequest !== requestNumber) {
        return;  // a newer photo was chosen meanwhile
      }
      const first = body.results && body.results[0];
      if (!first) {
        throw new Error("The server returned no result for this image.");
      }
      showResult(first);
      noteModelArrived(body);
    } catch (error) {
      if (thisRequest === requestNumber) {
        resetResult();
        result.dataset.state = "error";
        resultIdle.textContent = "No result.";
        showError(error.message);
      }
    } finally {
      if (thisRequest === requestNumber) {
        analyzeButton.disabled = !currentFile;
        analyzeButton.textContent = "Analyze";
        result.removeAttribute("aria-busy");
      }
    }
  }

  // Positions a box given in original-image pixels as percentages of the preview, which scales with the page.
  function place(element, box, width, height) {
    const [x, y, w, h] = box;
    element.style.left = `${(100 * x) / width}%`;
    element.style.top = `${(100 * y) / height}%`;
    element.style.width = `${(100 * w) / width}%`;
    element.style.height = `${(100 * h) / height}%`;
  }

  // The server reports the size it scored; if the browser applied an EXIF rotation the server did not
  // (or the reverse), the sides are swapped: show the pixels as stored so the overlays line up.
  function matchServerOrientation(width, height) {
    const shownWidth = previewImage.naturalWidth;
    const shownHeight = previewImage.naturalHeight;
    if (shownWidth && width !== height && shownWidth === height && shownHeight === width) {
      previewImage.style.imageOrientation = "none";
    }
    // Also covers a photo the browser cannot display: the overlays keep the scored image's proportions.
    sizeStage(width, height);
  }

  function showResult(entry) {
    if (entry.kind === "video") {
      showVerdict(entry);
      showVideoResult(entry);
      return;
    }
    showVerdict(entry);
    showImageResult(entry);
  }

  function showVerdict(entry) {
    const isFake = entry.label === "fake";
    const verdict = $("verdict");
    verdict.textContent = isFake ? "Fake" : "Real";
    verdict.className = `verdict ${isFake ? "is-fake" : "is-real"}`;
    $("fake-probability").textContent = percent(entry.fake_probability);
    $("fake-probability").dataset.value = String(entry.fake_probability);
    $("threshold").textContent = percent(entry.threshold);
    $("threshold").dataset.value = String(entry.threshold);
    $("probability-bar").style.width = `${Math.max(0, Math.min(1, entry.fake_probability)) * 100}%`;
    $("probability-bar").className = `meter-fill ${isFake ? "is-fake" : "is-real"}`;
    $("threshold-marker").style.left = `${Math.max(0, Math.min(1, entry.threshold)) * 100}%`;
    $("probability-meter").setAttribute("aria-label",
      `Fake probability ${percent(entry.fake_probability)}, threshold ${percent(entry.threshold)}`);
  }

  function showImageResult(entry) {
    const width = entry.width;
    const height = entry.height;
    matchServerOrientation(width, height);
    const faces = entry.faces || [];
    const region = $("scored-region");
    if (entry.scored_region === "face") {
      region.textContent = "Scored: the face found in the photo (box on the preview).";
    } else if (entry.scored_region === "faces") {
      region.textContent = `Scored: ${faces.length} faces; the verdict follows the most likely fake.`;
    } else if (entry.scored_region === "center") {
      region.textContent = "Scored: the center of the image at full resolution, where generator traces survive.";
    } else {
      region.textContent = "Scored: the whole image (no face cropping).";
    }
    const list = $("faces-list");
    list.replaceChildren();
    faceBoxes.replaceChildren();
    faces.forEach((face, index) => {
      const box = document.createElement("div");
      box.className = `face-box ${face.label === "fake" ? "is-fake" : "is-real"}`;
      place(box, face.box, width, height);
      if (faces.length > 1) {
        const tag = document.createElement("span");
        tag.className = "face-tag";
        tag.textContent = String(index + 1);
        box.appendChild(tag);
        const item = document.createElement("li");
        const faceLabel = face.label === "fake" ? "Fake" : "Real";
        item.textContent = `Face ${index + 1}: ${faceLabel}, ${percent(face.fake_probability)}`;
        list.appendChild(item);
      }
      faceBoxes.appendChild(box);
    });

    if (entry.heatmap && entry.heatmap.png) {
      heatmap.src = entry.heatmap.png;
      heatmap.alt = `Heatmap (${entry.heatmap.method}) of the regions that drove the score`;
      place(heatmap, entry.heatmap.box || [0, 0, width, height], width, height);
      heatmapMethod.textContent = `(${entry.heatmap.method})`;
      heatmapToggleLabel.hidden = false;
      heatmap.hidden = !heatmapToggle.checked;
      heatmapLegend.hidden = false;
    }

    showTimingsAndFinish(entry);
  }

  function showTimingsAndFinish(entry) {
    const timings = entry.timings_ms || {};
    $("timings").textContent = Object.entries(timings)
      .map(([step, milliseconds]) => `${step} ${Number(milliseconds).toFixed(1)} ms`)
      .join(" · ");

    resultIdle.hidden = true;
    resultBody.hidden = false;
    result.dataset.state = "done";
  }

  function clock(seconds) {
    const minutes = Math.floor(seconds / 60);
    return `${minutes}:${(seconds - 60 * minutes).toFixed(2).padStart(5, "0")}`;
  }

  function svgElement(name, attributes, text) {
    const node = document.createElementNS(SVG, name);
    Object.entries(attributes).forEach(([key, value]) => node.setAttribute(key, String(value)));
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  // The per-frame P(fake) against time, the threshold as a dashed line: where in the clip the model sees a fake.
  function drawTimeline(entry) {
    const frames = entry.frames || [];
    const box = { left: 36, right: 312, top: 8, bottom: 124 };
    const last = frames.length ? frames[frames.length - 1].timestamp_s : 0;
    const duration = Math.max((entry.video && entry.video.duration_s) || 0, last, 0.001);
    const x = (seconds) => box.left + ((box.right - box.left) * seconds) / duration;
    const y = (probability) => box.bottom - (box.bottom - box.top) * probability;
    const chart = timelineChart;
    chart.replaceChildren();
    chart.appendChild(svgElement("rect", { class: "timeline-plot", x: box.left, y: box.top,
      width: box.right - box.left, height: box.bottom - box.top }));
    [0, 0.5, 1].forEach((probability) => {
      chart.appendChild(svgElement("text", { class: "timeline-label", x: box.left - 4, y: y(probability) + 4,
        "text-anchor": "end" }, `${probability * 100}%`));
    });
    chart.appendChild(svgElement("text", { class: "timeline-label", x: box.left, y: 142 }, "0 s"));
    chart.appendChild(svgElement("text", { class: "timeline-label", x: box.right, y: 142, "text-anchor": "end" },
      `${duration.toFixed(1)} s`));
    chart.appendChild(svgElement("line", { id: "timeline-threshold", class: "timeline-threshold", x1: box.left,
      x2: box.right, y1: y(entry.threshold), y2: y(entry.threshold), "data-value": entry.threshold }));
    const points = frames.map((frame) => `${x(frame.timestamp_s).toFixed(1)},${y(frame.fake_probability).toFixed(1)}`);
    chart.appendChild(svgElement("polyline", { class: "timeline-line", points: points.join(" ") }));
    // Frames are marked against the line drawn, the video's threshold (chosen on validation videos when the model
    // card has one; each frame's own label uses the image threshold).
    const aboveThreshold = (frame) => frame.fake_probability >= entry.threshold;
    frames.forEach((frame) => {
      const dot = svgElement("circle", { class: `timeline-point ${aboveThreshold(frame) ? "is-fake" : "is-real"}`,
        cx: x(frame.timestamp_s), cy: y(frame.fake_probability), r: 3.5,
        "data-timestamp": frame.timestamp_s, "data-probability": frame.fake_probability });
      dot.appendChild(svgElement("title", {}, `${clock(frame.timestamp_s)}: ${percent(frame.fake_probability)}` +
        (frame.face ? "" : " (no face)")));
      chart.appendChild(dot);
    });
    const fakeFrames = frames.filter(aboveThreshold).length;
    $("timeline-summary").textContent = `${frames.length} frames scored, ${fakeFrames} above the threshold; ` +
      `video P(fake) = ${entry.aggregation.description}.`;
  }

  function showWorstFrames(entry) {
    worstFrames.replaceChildren();
    (entry.worst_frames || []).forEach((frame) => {
      const item = document.createElement("li");
      item.className = "worst-frame";
      if (frame.thumbnail) {
        const picture = document.createElement("div");
        picture.className = "worst-frame-picture";
        const image = document.createElement("img");
        image.src = frame.thumbnail;
        image.alt = `Frame at ${clock(frame.timestamp_s)}`;
        picture.appendChild(image);
        if (frame.face) {
          const faceBox = document.createElement("div");
          faceBox.className = `face-box ${frame.label === "fake" ? "is-fake" : "is-real"}`;
          place(faceBox, frame.face.box, entry.width, entry.height);
          picture.appendChild(faceBox);
        }
        item.appendChild(picture);
      }
      const caption = document.createElement("span");
      caption.className = "worst-frame-caption";
      caption.textContent = `${clock(frame.timestamp_s)} · ${percent(frame.fake_probability)}` +
        (frame.face ? "" : " · no face");
      item.appendChild(caption);
      worstFrames.appendChild(item);
    });
  }

  function showVideoResult(entry) {
    heatmap.hidden = true;
    faceBoxes.replaceChildren();
    $("faces-list").replaceChildren();
    const frames = entry.frames || [];
    const region = $("scored-region");
    if (entry.scored_region === "faces") {
      region.textContent = `Scored: ${frames.length} frames of the video, the face followed in ` +
        `${entry.frames_with_face} of them.`;
    } else {
      region.textContent = `Scored: ${frames.length} whole frames of the video.`;
    }
    if (entry.note) {
      region.textContent += ` ${entry.note[0].toUpperCase()}${entry.note.slice(1)}.`;
    }
    drawTimeline(entry);
    showWorstFrames(entry);
    timeline.hidden = false;
    showTimingsAndFinish(entry);
  }

  // The page was rendered before a model existed and the server has loaded one since.
  function noteModelArrived(body) {
    const banner = $("model-missing");
    if (!banner) {
      return;
    }
    banner.hidden = true;
    const info = $("model-info");
    info.dataset.loaded = "true";
    info.textContent = `Model ${body.model_version} (${body.backend} ${body.variant || ""}) is now loaded; ` +
      "reload the page for its details.";
    if (body.notice && !$("demo-notice")) {
      const notice = document.createElement("div");
      notice.className = "banner";
      notice.id = "demo-notice";
      notice.setAttribute("role", "note");
      notice.textContent = body.notice;
      banner.after(notice);
    }
  }

  fileInput.addEventListener("change", () => {
    if (fileInput.files && fileInput.files[0]) {
      selectFile(fileInput.files[0], false);
    }
  });

  // A label opens the picker on click; Enter and Space must do the same for keyboard users.
  dropZone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      fileInput.click();
    }
  });

  ["dragenter", "dragover"].forEach((type) => {
    dropZone.addEventListener(type, (event) => {
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
      dropZone.classList.add("is-dragging");
    });
  });
  ["dragleave", "dragend"].forEach((type) => {
    dropZone.addEventListener(type, () => dropZone.classList.remove("is-dragging"));
  });
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dropZone.classList.remove("is-dragging");
    const files = event.dataTransfer.files;
    if (files && files.length) {
      if (selectFile(files[0], true) && files.length > 1) {
        fileName.textContent += ` (the first of ${files.length} dropped files; one photo at a time)`;
      }
    }
  });
  // A file dropped beside the zone would otherwise make the browser navigate away to display it.
  ["dragover", "drop"].forEach((type) => {
    window.addEventListener(type, (event) => {
      if (!dropZone.contains(event.target)) {
        event.preventDefault();
      }
    });
  });

  analyzeButton.addEventListener("click", analyze);
  heatmapToggle.addEventListener("change", () => {
    heatmap.hidden = !heatmapToggle.checked || !heatmap.getAttribute("src");
  });
})();
