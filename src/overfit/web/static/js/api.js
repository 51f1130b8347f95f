// The server's HTTP and WebSocket API, as promises. Every refusal becomes an ApiError
// carrying the server's one-line message and, where one input is to blame, its field.

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field ?? null;
  }
}

async function call(method, path, body, headers = {}) {
  const init = { method, headers: { ...headers } };
  if (body instanceof Blob) init.body = body;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, "the lab server does not answer; is `overfit lab` still running?");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.error || `HTTP ${response.status}`, data.field);
  return data;
}

export const api = {
  meta: () => call("GET", "/api/meta"),
  runs: () => call("GET", "/api/runs"),
  run: (id) => call("GET", `/api/runs/${encodeURIComponent(id)}`),
  create: (config, upload) => call("POST", "/api/runs", { config, upload: upload ?? null }),
  action: (id, what) => call("POST", `/api/runs/${encodeURIComponent(id)}/${what}`),
  network: (id, step) => call("GET", `/api/runs/${encodeURIComponent(id)}/network${step === null || step === undefined ? "" : `?step=${step}`}`),
  networkUnit: (id, layer, unit, step) => call("GET", `/api/runs/${encodeURIComponent(id)}/network/unit?layer=${layer}&unit=${unit}${step === null || step === undefined ? "" : `&step=${step}`}`),
  batch: (id, n = 1024) => call("GET", `/api/runs/${encodeURIComponent(id)}/batch?n=${n}`),
  upload: (file) => call("POST", "/api/uploads", file, { "Content-Type": file.type || "application/octet-stream" }),
};

export const urls = {
  targetPreviewPath: "/api/target.png",
  target: (id) => `/api/runs/${encodeURIComponent(id)}/target.png`,
  frame: (id, step) => `/api/runs/${encodeURIComponent(id)}/frames/${step}.png`,
  download: (id, kind) => `/api/runs/${encodeURIComponent(id)}/download/${kind}`,
  targetPreview(data, upload) {
    const q = new URLSearchParams({ mode: data.mode });
    if (upload) q.set("upload", upload);
    else {
      q.set("text", data.text);
      q.set("width", data.width);
      q.set("height", data.height);
      if (data.font_size) q.set("font_size", data.font_size);
    }
    return `${urls.targetPreviewPath}?${q}`;
  },
};

// The server's close code for a viewer over its per-run cap ("try again later"); the reason says why.
export const TOO_MANY_VIEWERS = 1013;

// A WebSocket that follows one run, reconnecting while `wanted()` says so. A socket the
// server refuses for having too many viewers calls `onRefused(reason)` and tries again later.
export function follow(id, onMessage, wanted, onRefused = () => {}) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  let socket = null;
  let closed = false;
  const open = () => {
    socket = new WebSocket(`${scheme}://${location.host}/api/runs/${encodeURIComponent(id)}/live`);
    socket.onmessage = (e) => onMessage(JSON.parse(e.data));
    socket.onclose = (e) => {
      const refused = e.code === TOO_MANY_VIEWERS;
      if (refused) onRefused(e.reason || "this run has too many viewers; close a tab that shows it");
      if (!closed && wanted()) setTimeout(open, refused ? 15000 : 2000);  // a place may free up; or the server restarted
    };
  };
  open();
  return { close() { closed = true; socket?.close(); } };
}

export async function fetchError(path) {
  // For images that failed to load: the JSON message the server gave instead.
  try {
    const r = await fetch(path);
    const d = await r.json();
    return new ApiError(r.status, d.error, d.field);
  } catch {
    return new ApiError(0, "cannot load " + path);
  }
}
