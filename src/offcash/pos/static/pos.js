// offcash point of sale: the page. It holds no key and decides nothing: it sends what the
// cashier types, pastes, uploads or films to the local `offcash pos` process and shows the
// answer. Amounts arrive as exact decimal strings and are formatted with Intl.NumberFormat
// (a string input is formatted exactly: no float). Server text is always set with textContent.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const WASM = "/static/vendor/zxing-wasm/zxing_reader.wasm";
  const FRAME_MS = 600; // how long each frame of a multi-code request is shown
  const SCAN_MS = 150; // pause between two camera reads
  let info = null;
  const timers = new Map(); // img -> interval animating its frames
  let stream = null;
  let scanning = false;
  let codes = new Map();

  async function api(method, path, body, contentType) {
    const headers = { "X-CSRF-Token": csrf };
    let payload = body;
    if (body !== undefined && contentType === undefined) {
      headers["Content-Type"] = "application/json";
      payload = JSON.stringify(body);
    } else if (contentType) {
      headers["Content-Type"] = contentType;
    }
    let res;
    try {
      res = await fetch(path, { method, headers, body: payload, cache: "no-store" });
    } catch (e) {
      return {
        ok: false,
        data: { accepted: false, code: "pos-unreachable",
                message: "the till's local server does not answer: is `offcash pos` running?" },
      };
    }
    let data;
    try {
      data = await res.json();
    } catch (e) {
      data = { accepted: false, code: `http-${res.status}`,
               message: `unexpected answer from the till (HTTP ${res.status})` };
    }
    return { ok: res.ok, data };
  }

  function money(m) {
    const digits = info ? info.digits : 2;
    const fmt = new Intl.NumberFormat(undefined, {
      style: "currency", currency: m.currency,
      minimumFractionDigits: digits, maximumFractionDigits: digits,
    });
    return fmt.format(m.decimal); // a decimal string: formatted exactly
  }

  function el(tag, text, cls) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = text;
    if (cls) node.className = cls;
    return node;
  }

  async function loadInfo() {
    const { ok, data } = await api("GET", "/api/info");
    if (!ok) {
      $("till-info").textContent = `${data.code}: ${data.message}`;
      return;
    }
    info = data;
    $("amount-currency").textContent = `(${data.currency})`;
    const held = data.kind === "wallet"
      ? `balance ${money(data.balance)}`
      : `held for redemption ${money(data.held)}`;
    $("till-info").textContent = `${data.kind === "wallet" ? "Wallet" : "Receive-only terminal"}, ${held}`;
  }

  // --- 1-2. the request ---------------------------------------------------------------------

  // Show the QR codes of one message in `img`, in turn when there are several.
  function showFrames(img, caption, frames) {
    clearInterval(timers.get(img));
    let i = 0;
    const show = () => {
      img.src = frames[i];
      caption.textContent = frames.length > 1 ? `code ${i + 1} of ${frames.length}` : "";
      i = (i + 1) % frames.length;
    };
    show();
    if (frames.length > 1) timers.set(img, setInterval(show, FRAME_MS));
  }

  $("sale-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    $("sale-error").textContent = "";
    const amount = $("amount").value.trim();
    if (!amount) {
      $("sale-error").textContent = "Type an amount first.";
      $("amount").focus();
      return;
    }
    const reference = $("reference").value.trim() || null;
    const { ok, data } = await api("POST", "/api/request", { amount, reference });
    if (!ok) {
      $("sale-error").textContent = `${data.code}: ${data.message}`;
      $("amount").setAttribute("aria-invalid", "true");
      return;
    }
    $("amount").removeAttribute("aria-invalid");
    $("request").hidden = false;
    $("request-amount").textContent = money(data.amount);
    $("request-reference").textContent = data.reference ? `Reference: ${data.reference}` : "";
    $("request-qr").alt = `Payment request QR code for ${money(data.amount)}`;
    showFrames($("request-qr"), $("request-frame"), data.frames);
    $("request-text").value = data.text;
    $("request-title").focus();
  });

  // --- 3. receiving -------------------------------------------------------------------------

  function showResult(ok, data) {
    const box = $("result");
    box.replaceChildren();
    box.className = data.accepted && ok ? "ok" : "bad";
    box.dataset.code = data.code || "";
    if (data.accepted && ok) {
      const verdict = data.duplicate ? "Already received" : "Accepted";
      box.append(el("p", `${verdict}: ${money(data.amount)}`, "verdict"));
      box.append(el("p", `From ${data.payer}${data.reference ? `, reference ${data.reference}` : ""}`));
      box.append(el("p", data.message, "muted"));
      if (data.receipt) {
        $("receipt").hidden = false;
        showFrames($("receipt-qr"), $("receipt-frame"), data.receipt.frames);
      } else {
        clearInterval(timers.get($("receipt-qr")));
        $("receipt").hidden = true;
      }
      if (!data.duplicate) {
        $("payment-text").value = "";
        $("amount").value = "";
        $("reference").value = "";
        clearInterval(timers.get($("request-qr")));
        $("request").hidden = true;
      }
      loadHistory();
      loadInfo();
    } else {
      clearInterval(timers.get($("receipt-qr")));
      $("receipt").hidden = true;
      box.append(el("p", "Refused", "verdict"));
      box.append(el("p", data.message || data.code || "error", "reason"));
    }
  }

  $("paste-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("payment-text").value;
    if (!text.trim()) {
      showResult(false, { code: "transport-empty-source", message: "paste the payer's payment text first" });
      return;
    }
    const { ok, data } = await api("POST", "/api/receive", text, "text/plain; charset=utf-8");
    showResult(ok, data);
  });

  $("upload").addEventListener("change", async () => {
    const file = $("upload").files[0];
    if (!file) return;
    $("scan-status").textContent = `Reading ${file.name}…`;
    const { ok, data } = await api("POST", "/api/receive", file, "application/octet-stream");
    $("upload").value = "";
    $("scan-status").textContent = "";
    showResult(ok, data);
  });

  function toBase64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }

  function stopCamera() {
    scanning = false;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    $("camera").hidden = true;
    $("camera").srcObject = null;
    $("camera-button").textContent = "Scan with camera";
    $("camera-button").setAttribute("aria-pressed", "false");
  }

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.ZXingWASM) {
      $("scan-status").textContent = "No camera here: upload an image or paste the text.";
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "environment" }, audio: false,
      });
    } catch (e) {
      $("scan-status").textContent = `Camera unavailable (${e.name}): upload an image or paste the text.`;
      return;
    }
    window.ZXingWASM.prepareZXingModule({
      overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? WASM : prefix + path) },
    });
    const video = $("camera");
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    codes = new Map();
    scanning = true;
    $("camera-button").textContent = "Stop camera";
    $("camera-button").setAttribute("aria-pressed", "true");
    $("scan-status").textContent = "Point the camera at the payer's code.";
    scanLoop(video);
  }

  async function scanLoop(video) {
    const canvas = document.createElement("canvas");
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    while (scanning) {
      const w = video.videoWidth;
      const h = video.videoHeight;
      if (w && h) {
        canvas.width = w;
        canvas.height = h;
        ctx.drawImage(video, 0, 0, w, h);
        let results = [];
        try {
          results = await window.ZXingWASM.readBarcodes(ctx.getImageData(0, 0, w, h), {
            formats: ["QRCode"], maxNumberOfSymbols: 8, tryHarder: true,
          });
        } catch (e) {
          $("scan-status").textContent = `The QR decoder failed (${e.name}): upload or paste instead.`;
          stopCamera();
          return;
        }
        let added = false;
        for (const r of results) {
          if (!r.isValid || !r.bytes.length) continue;
          const b64 = toBase64(r.bytes);
          if (!codes.has(b64)) {
            codes.set(b64, true);
            added = true;
          }
        }
        if (codes.size > 250) codes = new Map();
        if (added && scanning) {
          const { ok, data } = await api("POST", "/api/scan", { codes: [...codes.keys()] });
          if (ok && data.scanning) {
            $("scan-status").textContent = data.total
              ? `Reading the payer's code: ${data.seen} of ${data.total} parts`
              : "That is not an offcash code: keep pointing at the payer's code.";
          } else {
            stopCamera();
            $("scan-status").textContent = "";
            showResult(ok, data);
            return;
          }
        }
      }
      await new Promise((r) => setTimeout(r, SCAN_MS));
    }
  }

  $("camera-button").addEventListener("click", () => (scanning ? stopCamera() : startCamera()));

  // --- 5. today, and sync -------------------------------------------------------------------

  async function loadHistory() {
    const box = $("history");
    const { ok, data } = await api("GET", "/api/history");
    box.replaceChildren();
    if (!ok) {
      box.append(el("p", `${data.code}: ${data.message}`, "error"));
      return;
    }
    const table = el("table");
    table.append(el("caption", `Payments received on ${data.date}: ${data.count}`, "visually-hidden"));
    const head = el("tr");
    for (const [name, cls] of [["Time"], ["From"], ["Reference"], ["Amount", "amount"]]) {
      const th = el("th", name, cls);
      th.scope = "col";
      head.append(th);
    }
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const body = el("tbody");
    for (const p of data.payments) {
      const tr = el("tr");
      tr.append(el("td", p.time), el("td", p.payer), el("td", p.reference || ""),
                el("td", money(p.amount), "amount"));
      body.append(tr);
    }
    table.append(body);
    const foot = el("tfoot");
    const tr = el("tr");
    const label = el("td", `Total (${data.count} payment${data.count === 1 ? "" : "s"})`);
    label.colSpan = 3;
    tr.append(label, el("td", money(data.total), "amount"));
    foot.append(tr);
    table.append(foot);
    box.append(table);
  }

  $("sync-button").addEventListener("click", async () => {
    const button = $("sync-button");
    button.disabled = true;
    $("sync-status").textContent = "Syncing…";
    const { ok, data } = await api("POST", "/api/sync");
    button.disabled = false;
    $("sync-status").textContent = ok ? data.message : `Not synced: ${data.code}: ${data.message}`;
    loadInfo();
  });

  loadInfo().then(loadHistory);
})();
