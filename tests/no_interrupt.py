"""Run a script as on a system where a signal never interrupts a blocking call.

    python tests/no_interrupt.py SCRIPT [ARGS...]

SIGINT and SIGTERM are blocked in the main thread (and so in every thread it
starts, libzmq's included) and left to a helper thread started first. The
kernel delivers them there; Python then runs the script's handler in the main
thread, but only once that thread is back in Python code. That is how Windows
behaves, where Ctrl-C never interrupts a blocking call: a script that blocks
in C for long does not stop on Ctrl-C.
"""

import runpy
import signal
import sys
import threading

threading.Thread(target=threading.Event().wait, daemon=True).start()  # takes the signals
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
