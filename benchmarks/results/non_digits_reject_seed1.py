"""Calibrate and measure a second reject model (seed 1) without touching the shipped files."""
import shutil, sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
import digitlab.reject as R
import non_digits as ND
d = Path("/tmp/rj/s2"); d.mkdir(exist_ok=True)
shutil.copy("/tmp/rj/r2.dlm", d / "reject.dlm")
for mod in (R, ND):
    mod.NET_WEIGHTS = d / "reject.dlm"
    mod.CALIBRATION = d / "reject.json"
sys.argv = ["non_digits.py", "--calibrate", "--degraded", "500", "--per-kind", "100", "--write", "--json", str(d / "cal.json")]
ND.main()
R.calibration.cache_clear(); R.net_model.cache_clear()
sys.argv = ["non_digits.py", "--json", str(d / "meas.json")]
ND.main()
