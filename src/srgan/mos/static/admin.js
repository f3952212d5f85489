// Admin page: live progress (refreshed every 5 s) and new invitation links.
"use strict";
(function () {
  const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop());
  const api = "/api/admin/" + encodeURIComponent(token);
  const $ = (id) => document.getElementById(id);

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  async function refresh() {
    const response = await fetch(api + "/progress", { cache: "no-store" });
    const data = await response.json();
    if (!response.ok) throw new Error(data.error);
    $("summary").textContent = data.raters.length + " raters, " + data.finished + " finished; " +
      data.ratings + " of " + data.assigned + " ratings given.";
    const rows = data.raters.map((r) => {
      const tr = document.createElement("tr");
      const last = r.last ? new Date(r.last * 1000).toLocaleTimeString() : "";
      tr.append(cell(r.id), cell(r.name), cell(r.rated + " / " + r.total), cell(last), cell(r.link, "link"));
      return tr;
    });
    $("raters").replaceChildren(...rows);
  }

  $("add").addEventListener("submit", async (e) => {
    e.preventDefault();
    const response = await fetch(api + "/raters", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ count: Number($("count").value), name: $("name").value }),
    });
    const data = await response.json();
    $("message").hidden = false;
    $("message").textContent = response.ok ? "Added:\n" + data.links.join("\n") : data.error;
    refresh();
  });

  const loop = () => refresh().catch((err) => { $("summary").textContent = err.message; });
  loop();
  setInterval(loop, 5000);
})();
