// Rating page: reads its invitation token from the URL (/r/TOKEN), asks the server for the next item,
// posts one rating at a time (retried with the same body if the network fails: the server stores it once).
"use strict";
(function () {
  const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const api = "/api/r/" + encodeURIComponent(token);
  const $ = (id) => document.getElementById(id);
  const LABELS = { 1: "1 (bad)", 5: "5 (excellent)" };
  let state = null;
  let busy = false;

  function show(section) {
    for (const id of ["instructions", "rating", "done"]) $(id).hidden = id !== section;
  }

  function message(text) {
    $("message").textContent = text || "";
    $("message").hidden = !text;
  }

  async function request(path, body) {
    // Retry network failures and 5xx a few times with the same body; 4xx are final.
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await fetch(api + path, body === undefined ? {} : {
          method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
        });
        const data = await response.json().catch(() => ({}));
        if (response.ok) return data;
        if (response.status < 500 || attempt >= 4) throw new Error(data.error || "error " + response.status);
      } catch (err) {
        if (attempt >= 4 || !(err instanceof TypeError)) throw err;
      }
      message("Connection problem, retrying...");
      await new Promise((r) => setTimeout(r, 500 * 2 ** attempt));
    }
  }

  function imageUrl(id) {
    return api + "/image/" + encodeURIComponent(id);
  }

  function render(next) {
    state = next;
    message("");
    if (!state.started) {
      const box = $("anchors");
      box.replaceChildren();
      for (const a of state.anchors) {
        const fig = document.createElement("figure");
        const img = document.createElement("img");
        img.src = imageUrl(a.image);
        img.alt = "example scored " + a.score;
        const cap = document.createElement("figcaption");
        cap.textContent = "Score " + LABELS[a.score];
        fig.append(img, cap);
        box.append(fig);
      }
      if (state.anchors.length) {
        const p = document.createElement("p");
        p.textContent = "Examples: the lowest and the highest quality in this study.";
        box.prepend(p);
      }
      show("instructions");
      return;
    }
    if (state.done) {
      show("done");
      return;
    }
    const item = state.next;
    $("bar").style.width = (100 * state.rated / state.total) + "%";
    $("progress").setAttribute("aria-valuemax", String(state.total));
    $("progress").setAttribute("aria-valuenow", String(state.rated));
    $("count").textContent = (state.rated + 1) + " / " + state.total;
    if (item.phase === "calibration") {
      $("phase").textContent = "Calibration: this image stands for a score of " + LABELS[item.anchor] + ".";
      $("phase").dataset.anchor = String(item.anchor);
      $("phase").className = "phase calibration";
    } else {
      $("phase").textContent = "How good is the quality of this image?";
      delete $("phase").dataset.anchor;
      $("phase").className = "phase";
    }
    const img = $("image");
    img.dataset.position = String(item.position);
    img.src = imageUrl(item.image);
    if (state.upcoming) new Image().src = imageUrl(state.upcoming);  // preload
    show("rating");
  }

  async function rate(score) {
    if (busy || !state || !state.next) return;
    busy = true;
    for (const b of document.querySelectorAll("#scores button")) b.disabled = true;
    try {
      render(await request("/rate", { position: state.next.position, image: state.next.image, score: score }));
    } catch (err) {
      message(err.message + " Reload the page to continue.");
    } finally {
      busy = false;
      for (const b of document.querySelectorAll("#scores button")) b.disabled = false;
    }
  }

  $("scores").addEventListener("click", (e) => {
    const button = e.target.closest("button[data-score]");
    if (button) rate(Number(button.dataset.score));
  });
  document.addEventListener("keydown", (e) => {
    if (e.altKey || e.ctrlKey || e.metaKey || $("rating").hidden) return;
    if (e.key >= "1" && e.key <= "5") {
      e.preventDefault();
      rate(Number(e.key));
    }
  });
  $("start").addEventListener("click", async () => {
    try {
      render(await request("/start", {}));
    } catch (err) {
      message(err.message);
    }
  });

  request("/state").then(render, (err) => message(err.message));
})();
