"""Clean shutdown: SIGTERM during a save removes the temporary file; stale temporaries of a killed
process are removed at the next start, live ones are not."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from more4d_core.export.atomic import TMP_MARK, remove_stale_temporaries

REPO = Path(__file__).resolve().parents[1]


def test_stale_temporaries_go_and_live_ones_stay(tmp_path):
    sub = tmp_path / "more4d"
    sub.mkdir()
    stale_file = sub / f".video{TMP_MARK}abc.tmp.mp4"
    stale_dir = tmp_path / f".scene_ply{TMP_MARK}def.tmp"
    live = sub / f".other{TMP_MARK}ghi.tmp.npz"
    mine = sub / ".not-ours.tmp"  # someone else's hidden file
    for p in (stale_file, live, mine):
        p.write_bytes(b"x")
    stale_dir.mkdir()
    (stale_dir / "frame_0000.ply").write_bytes(b"x")
    old = time.time() - 7200
    for p in (stale_file, stale_dir, mine):
        os.utime(p, (old, old))
    assert remove_stale_temporaries(tmp_path) == 2
    assert not stale_file.exists() and not stale_dir.exists() and live.exists() and mine.exists()


def test_sigterm_during_a_save_leaves_no_temporary(tmp_path):
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO)!r})
        from more4d_core.run import _sigterm_unwinds
        from more4d_core.export.atomic import atomic_file
        with _sigterm_unwinds():
            with atomic_file({str(tmp_path / "clip.mp4")!r}) as fh:
                fh.write(b"partial")
                print("writing", flush=True)
                time.sleep(30)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
