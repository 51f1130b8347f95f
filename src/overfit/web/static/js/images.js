// Decoded pictures (ImageBitmaps) by URL, the least recently used dropped past a limit.
//
// A bitmap holds its decoded pixels outside the JavaScript heap (a 1000 x 300 frame is
// 1.2 MB) until `close()` is called, so a cache that only grows, or drops bitmaps without
// closing them, eats memory as one scrubs through hundreds of evaluations. Every bitmap
// that leaves the cache is closed once no one is about to draw it.

export const MAX_IMAGES = 48;

export class ImageCache {
  // load(url) -> Promise<ImageBitmap-like with close()>
  constructor(load, limit = MAX_IMAGES) {
    this.load = load;
    this.limit = limit;
    this.entries = new Map();   // url -> Promise<bitmap>, oldest use first
  }

  get size() {
    return this.entries.size;
  }

  // The bitmap of `url`: cached, or loaded now (`fresh`: load again even if cached, e.g. a target that may change).
  get(url, fresh = false) {
    let entry = this.entries.get(url);
    if (entry && fresh) {
      this.delete(url);
      entry = undefined;
    }
    if (entry) {
      this.entries.delete(url);   // re-inserted below: most recently used last
    } else {
      entry = this.load(url);
      // A failed load is not kept: the next request tries again.
      entry.catch(() => { if (this.entries.get(url) === entry) this.entries.delete(url); });
    }
    this.entries.set(url, entry);
    while (this.entries.size > this.limit) this.delete(this.entries.keys().next().value);
    return entry;
  }

  delete(url) {
    const entry = this.entries.get(url);
    if (!entry) return;
    this.entries.delete(url);
    // After the callbacks already waiting on it (a paint in progress) have run.
    entry.then((bitmap) => setTimeout(() => bitmap.close(), 0), () => {});
  }

  clear() {
    for (const url of [...this.entries.keys()]) this.delete(url);
  }
}
