"""Every size a person can type, in one table: its largest value, the input it applies to, and why.

A config, a command line, a request to the lab and a render are all one keystroke from an
absurd value (300,000 hidden layers, a 16-million-point batch, a body that never ends). The
memory budget (`budget`) refuses what does not fit the machine; these limits refuse what no
run needs, before any of it is read, allocated or drawn. Each module that takes the input
checks it here (`Limit.check`), so a refusal always names the field and the limit, and a
limit is changed in one place. Imports nothing of overfit's but its error types.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError, OverfitError


@dataclass(frozen=True)
class Limit:
    """The largest value of one input: `most` `unit`, for `field` (a dotted config key or a parameter name;
    empty for a whole text, such as config JSON, whose reader names no field)."""

    field: str
    most: int
    unit: str
    why: str

    def message(self, value: float) -> str:
        shown = f"{value:,}" if isinstance(value, int) else f"{value:.3g}"
        return f"{shown} {self.unit}: more than the limit of {self.most:,} ({self.why})"

    def check(self, value: float, error: type[OverfitError] = ConfigError, field: str | None = None) -> None:
        """Raise `error` naming the field and the limit when `value` is above it."""
        if value > self.most:
            raise error(self.message(value), field=(self.field if field is None else field) or None)


LIMITS: dict[str, Limit] = dict((
    # -- a run's config (command line, config files, the lab's form) ------------------------
    ("font_size", Limit("data.font_size", 4096, "points", "a glyph that size is larger than any canvas")),
    ("hidden_layers", Limit("model.hidden", 64, "hidden layers",
                            "a plain MLP without skip connections stops training long before that; every layer adds "
                            "a kernel launch to each step and a row of statistics to each metrics line")),
    ("hidden_width", Limit("model.hidden", 65536, "units in a layer", "two such layers are 17 GB of weights")),
    ("batch_size", Limit("optim.batch_size", 1 << 20, "coordinates",
                         "a batch that size covers a 1024 x 1024 picture; more holds the training thread for "
                         "seconds a step")),
    ("steps", Limit("schedule.steps", 10**10, "steps", "centuries of training")),
    ("eval_batch_size", Limit("schedule.eval_batch_size", 1 << 20, "coordinates", "as optim.batch_size")),
    ("evaluations", Limit("schedule.eval_every", 100_000, "evaluations",
                          "each writes a metrics line, a frame and a checkpoint; evaluate less often")),
    ("fourier_features", Limit("encoding.features", 65536, "features", "the paper uses 256")),
    ("config_chars", Limit("", 1 << 20, "characters of config JSON", "a real config is about 1.5 KB")),
    ("config_depth", Limit("", 16, "levels of JSON nesting", "a config has two")),
    ("seed_range", Limit("seeds", 1024, "seeds in one range", "one range is one run per seed")),
    # -- overfit sweep ----------------------------------------------------------------------
    ("sweep_trials", Limit("grid", 10_000, "trials", "grid points x seeds x samples; each trial is a run folder")),
    ("sweep_random_dims", Limit("random", 8, "randomly drawn fields",
                                "a sweep's evaluations are counted at every combination of their ends: 2 to the power of this many configs")),
    # -- overfit render ---------------------------------------------------------------------
    ("render_pixels", Limit("width", 1 << 28, "pixels", "16 times a 16-megapixel render")),
    # -- the lab -----------------------------------------------------------------------------
    ("request_bytes", Limit("body", 1 << 20, "bytes of request body", "a run request is a config of about 1.5 KB")),
    ("upload_bytes", Limit("upload", 20 * 1024 * 1024, "bytes", "a picture to fit, not an archive")),
    ("upload_pixels", Limit("upload", 4096 * 4096, "pixels",
                            "a browser tab and a shared server should not be tied up by one picture")),
    ("uploads", Limit("upload", 1000, "stored uploads", "as many as the run folders the lab makes")),
    ("upload_store_bytes", Limit("upload", 2 * 10**9, "bytes of stored uploads",
                                 "a page uploading in a loop must not fill the disk")),
    ("uploads_at_once", Limit("upload", 8, "uploads arriving at once", "each holds a temporary file of up to 20 MB")),
    ("viewers", Limit("viewers", 16, "live views of one run", "each costs a mailbox and a copy of every message")),
    ("sockets", Limit("viewers", 256, "live views in all",
                      "each is a file descriptor, and checkpoints and downloads need theirs")),
    ("folders", Limit("runs_dir", 1000, "run folders", "a page left making runs must not fill the disk")),
    # -- a run folder's files, read as untrusted input (`safefiles`): no file is read past these ---------
    ("config_file", Limit("config.json", 1 << 20, "bytes", "as config_chars: a real config is about 1.5 KB")),
    ("ending_file", Limit("ending.json", 64 << 10, "bytes", "how a run ended: a word, a step and a one-line reason")),
    ("metrics_file", Limit("metrics.jsonl", 2 << 30, "bytes",
                           "100,000 evaluations (the limit above) of up to ~17 kB each: 64 hidden layers' statistics")),
    ("picture_file", Limit("target.png", 256 << 20, "bytes",
                           "a PNG is about its pixels' size or less: 150 MB for 50 M RGB pixels (data.max_pixels' default)")),
    ("results_file", Limit("results.json", 1 << 30, "bytes",
                           "a reproduction's results: every run's history, at most 600 runs of at most ~1.7 MB each")),
    ("weights_file", Limit("weights/", 64 << 20, "bytes",
                           "kept only for models up to 1 M parameters (recorder.SNAPSHOT_PARAMS): 2 MB in half precision")),
    ("safetensors_header", Limit("safetensors", 16 << 20, "bytes of header",
                                 "one short JSON entry per tensor and the config: kB for any model")),
    ("checkpoint_slack", Limit("checkpoint.pt", 64 << 20, "bytes beyond 16 per parameter",
                               "a checkpoint holds the weights and Adam's two moments (12 bytes per parameter), "
                               "buffers, the config and the archive's own records")),
    # -- a sweep folder's files, read as untrusted input (`safefiles`, `sweep.state`) -----------------------
    ("sweep_spec_file", Limit("spec.json", 16 << 20, "bytes",
                              "a config of about 1.5 KB and the swept values: 10,000 grid points (sweep_trials) of short numbers")),
    ("sweep_signature_file", Limit("ray.sig", 4096, "bytes", "one SHA-256 HMAC in hex: 65 bytes")),
    ("ray_state_file", Limit("ray/tune", 4 << 30, "bytes in one file",
                             "Tune's record of one trial: at most 100,000 evaluations (evaluations) of a few hundred "
                             "numbers each; hashed in chunks, never held whole")),
))


def most(name: str) -> int:
    """The largest value of the limit called `name`."""
    return LIMITS[name].most
