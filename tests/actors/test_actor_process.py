"""An actor process ends when its main thread does, even with an idle non-daemon thread left (no Ray)."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import queue, threading
    from actors.actor_process import exit_when_main_thread_ends

    exit_when_main_thread_ends(grace_s=0.2)
    blocked = queue.Queue()
    threading.Thread(target=blocked.get, name="idle worker").start()  # non-daemon, never returns
    print("main thread done", flush=True)
""")


def test_an_idle_non_daemon_thread_no_longer_keeps_the_process_alive():
    # the timeout only bounds a hang (the process used to wait forever): it is no speed check
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout == "main thread done\n"


def test_without_the_watcher_such_a_process_waits_for_the_thread():
    script = SCRIPT.replace("exit_when_main_thread_ends(grace_s=0.2)", "")
    try:
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=3)
    except subprocess.TimeoutExpired:
        return
    raise AssertionError("the process ended by itself: the watcher is not what ends it")
