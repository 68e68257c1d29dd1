"""The mutants: small, plausible bugs, one edit to one script each.

Every socket option the scripts set and every behaviour of CONTRACT.md has at
least one. `old` must occur exactly once in its script (run.py refuses it
otherwise, so a change to a script cannot quietly turn a mutant into a no-op);
`tests` are the tests that must fail with the bug in; `breaks` is the promise
the bug breaks, as a user would see it.
"""

from collections import namedtuple

Mutant = namedtuple("Mutant", "name script old new breaks tests")

SINGLE = "tests/test_single.py::"
BROKERED = "tests/test_brokered.py::"
CLIENTS = "tests/test_clients.py::"
SERVERS = "tests/test_servers.py::"
HARDENING = "tests/test_hardening.py::"
SIGNALS = "tests/test_signals.py::"
SILENT = "tests/test_silent.py::"
STATE = "tests/test_broker_state.py::"
CROSS = "tests/interop/test_cross_host.py::"
DEFAULTS = "tests/interop/test_defaults.py::test_defaults_are_loopback_and_the_tutorials_ports"
EXACT = "tests/test_broker_exact.py::"
HOSTILE = "tests/test_hostile_clients.py::"
SECRET = "tests/test_secret.py::"
ONLY_PHRASE = f"{SECRET}test_only_peers_with_the_phrase_join_and_the_refused_say_why_once"
HALF_OPEN_CLOSED = (
    f"{EXACT}test_half_open_connection_closed_after_a_server_connected_is_not_a_server_leaving"
)
SLOW_LINK = f"{CROSS}test_request_near_max_size_over_a_slow_link_is_not_cut_by_heartbeats"
SLOW_LINK_1 = f"{CROSS}test_part1_request_near_max_size_over_a_slow_link_is_not_cut_by_heartbeats"

# Edits that fit several scripts.
HEARTBEAT = ("    sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)", "    pass")
HEARTBEAT_TIMEOUT = ("    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)", "    pass")
MAXMSGSIZE = (
    "    sock.setsockopt(zmq.MAXMSGSIZE, max_size + (SEALING if secret else 0))",
    "    pass",
)
BACKLOG = ("    sock.setsockopt(zmq.BACKLOG, BACKLOG)\n", "")
SIGINT_ONLY = (
    "for signum in (signal.SIGINT, signal.SIGTERM):",
    "for signum in (signal.SIGINT,):",
)
EXIT_AT_ONCE = (
    "        signal.signal(signum, note)",
    "        signal.signal(signum, lambda signum, frame: sys.exit(0))",
)
KEEP_FILE_LIMIT = ("    if resource is None:\n", "    if True:\n")
WRAPS_PORTS = ("int(port) > 65535", "int(port) > 65536")
NO_HINT = ('hint = "" if "://" in endpoint else', 'hint = "" if True else')
LINGER_0 = ("LINGER_MS = 500  #", "LINGER_MS = 0  #")
DESTROY_LINGERING = ("ctx.destroy(linger=0)", "ctx.destroy()")


def signal_mutants(script, name):
    return [
        Mutant(f"{name}.ignores-sigterm", script, *SIGINT_ONLY,
               "SIGTERM kills it with no goodbye line, exit status -15",
               [f"{SIGNALS}test_signal_stops_script_cleanly[{script}-SIGTERM-plain]"]),
        Mutant(f"{name}.wraps-ports", script, *WRAPS_PORTS,
               "port 65536 is taken as port 0 instead of refused",
               [f"{SINGLE}test_bad_endpoint_is_one_clear_line[{script}-over-65535]"]),
    ]  # fmt: skip


def client_mutants(script, silent_test, immediate_test):
    """The same bugs in either client: c.py and mreq.py share their REQ logic."""
    name = script.removesuffix(".py")
    return [
        *signal_mutants(script, name),
        Mutant(f"{name}.no-relaxed", script, "    sock.setsockopt(zmq.REQ_RELAXED, 1)", "    pass",
               "the first resend fails (REQ refuses a second send): a traceback",
               [f"{CLIENTS}test_unanswered_request_is_resent_each_timeout_then_given_up[{script}]"]),
        Mutant(f"{name}.no-correlate", script, "    sock.setsockopt(zmq.REQ_CORRELATE, 1)",
               "    pass",
               "a late reply to an earlier request is taken for the current one",
               [f"{CLIENTS}test_late_reply_is_never_taken_for_a_later_request[{script}]"]),
        Mutant(f"{name}.no-routing-id", script,
               "    sock.setsockopt(zmq.ROUTING_ID, uuid.uuid4().hex.encode())\n", "",
               "after a broker restart, a reply finished late reaches another client",
               [f"{CLIENTS}test_reply_from_before_a_broker_restart_reaches_its_own_client[{script}]"]),
        Mutant(f"{name}.no-immediate", script, "    sock.setsockopt(zmq.IMMEDIATE, 1)", "    pass",
               "requests are queued for a peer that is down, each lost for a --timeout",
               [immediate_test]),
        Mutant(f"{name}.no-heartbeat", script, *HEARTBEAT,
               "a frozen server or broker keeps being sent requests, each lost for a --timeout",
               [silent_test]),
        Mutant(f"{name}.short-heartbeat-timeout", script, *HEARTBEAT_TIMEOUT,
               "a peer that stalls for 2 s is dropped (1 s timeout), and a request is lost",
               [f"{SILENT}test_peer_stalled_for_less_than_the_heartbeat_timeout_is_kept[{script}]"]),
        Mutant(f"{name}.lingers", script, *DESTROY_LINGERING,
               "Ctrl-C waits until a request still queued is delivered",
               [f"{SIGNALS}test_signal_stops_script_cleanly[{script}-SIGINT-plain]"]),
        Mutant(f"{name}.no-retries", script, "if retries is not None and retry >= retries:",
               "if False:", "--retries is ignored: the client never gives up",
               [f"{CLIENTS}test_unanswered_request_is_resent_each_timeout_then_given_up[{script}]"]),
        Mutant(f"{name}.retries-plus-one", script, "retry >= retries:", "retry > retries:",
               "the client resends once more than --retries says",
               [f"{CLIENTS}test_unanswered_request_is_resent_each_timeout_then_given_up[{script}]"]),
        Mutant(f"{name}.resends-early", script, "within(timeout, stop, sock.recv_multipart)",
               "within(timeout / 4, stop, sock.recv_multipart)",
               "a request is resent before --timeout has passed",
               [f"{CLIENTS}test_unanswered_request_is_resent_each_timeout_then_given_up[{script}]"]),
        Mutant(f"{name}.any-reply-ok", script, "        if check_reply(request, reply):",
               "        if reply or check_reply(request, reply):",
               "a wrong reply is counted as verified",
               [f"{CLIENTS}test_wrong_reply_is_reported_and_fails_a_count_run[{script}]"]),
        Mutant(f"{name}.mismatch-exit-0", script, "return 1 if mismatched else 0", "return 0",
               "a --count run with wrong replies exits 0",
               [f"{CLIENTS}test_wrong_reply_is_reported_and_fails_a_count_run[{script}]"]),
        Mutant(f"{name}.count-verified-only", script,
               "while args.count is None or verified + mismatched < args.count:",
               "while args.count is None or verified < args.count:",
               "--count N does not end after N replies when some did not match",
               [f"{CLIENTS}test_wrong_reply_is_reported_and_fails_a_count_run[{script}]"]),
        Mutant(f"{name}.no-interval", script, "if verified + mismatched and args.interval:",
               "if False:", "--interval is ignored: requests go out back to back",
               [f"{CLIENTS}test_interval_is_the_pause_after_each_reply[{script}]"]),
        Mutant(f"{name}.long-waits", script, "POLL_MS = 100  #", "POLL_MS = 60_000  #",
               "where a signal does not interrupt a wait (Windows), Ctrl-C is not seen",
               [f"{SIGNALS}test_client_waiting_for_a_reply_stops_where_signals_do_not_interrupt[{script}]"]),
        Mutant(f"{name}.no-hint", script, *NO_HINT, "an endpoint without tcp:// gets no hint",
               [f"{SINGLE}test_endpoint_without_tcp_gets_a_hint[{script}---connect]"]),
        Mutant(f"{name}.loud", script, "            if not args.quiet:\n",
               "            if True:\n", "--quiet still prints a line per reply",
               [f"{CLIENTS}test_quiet_drops_the_per_request_lines_and_keeps_the_events[{script}]"]),
    ]  # fmt: skip


def server_mutants(script, in_hand_test, oversized_test):
    """The same bugs in either REP server, rep.py and mrep.py."""
    name = script.removesuffix(".py")
    client = "c.py" if script == "rep.py" else "mreq.py"
    return [
        *signal_mutants(script, name),
        Mutant(f"{name}.linger-0", script, *LINGER_0,
               "the reply to the request in hand can be lost on Ctrl-C", [in_hand_test]),
        Mutant(f"{name}.exits-mid-request", script, *EXIT_AT_ONCE,
               "Ctrl-C drops the request in hand: its client must resend it", [in_hand_test]),
        Mutant(f"{name}.long-waits", script, "POLL_MS = 100  #", "POLL_MS = -1  #",
               "where a signal does not interrupt a wait (Windows), Ctrl-C is not seen",
               [f"{SIGNALS}test_signal_stops_script_where_signals_do_not_interrupt[{script}]"]),
        Mutant(f"{name}.no-work", script, "    if work:\n", "    if False:\n",
               "--work is ignored", [f"{SERVERS}test_work_holds_each_request[{script}]"]),
        Mutant(f"{name}.no-maxmsgsize", script, *MAXMSGSIZE,
               "a peer can send a frame of any size: --max-size is ignored", [oversized_test]),
        Mutant(f"{name}.loud", script, "        if not quiet:\n            say(RECEIVED.format(",
               "        if True:\n            say(RECEIVED.format(",
               "--quiet still prints each request",
               [f"{CLIENTS}test_quiet_drops_the_per_request_lines_and_keeps_the_events[{client}]"]),
    ]  # fmt: skip


MUTANTS = [
    # rep.py: part 1's server.
    *server_mutants(
        "rep.py",
        f"{SERVERS}test_stopped_server_answers_the_request_in_hand[rep.py]",
        f"{HARDENING}test_oversized_request_drops_that_peer_and_rep_serves_the_others",
    ),
    Mutant("rep.no-handover", "rep.py", "    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)\n", "",
           "a client back under its name before the server noticed is never answered again",
           [f"{SERVERS}test_client_reconnecting_before_the_server_noticed_keeps_being_served[rep.py]"]),
    Mutant("rep.pings-clients", "rep.py", "    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)\n",
           "    sock.setsockopt(zmq.ROUTER_HANDOVER, 1)\n"
           "    sock.setsockopt(zmq.HEARTBEAT_IVL, 1000)\n"
           "    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)\n",
           "a client that sends 1000 requests unread and hangs up aborts the server",
           [f"{HOSTILE}test_a_client_that_floods_and_hangs_up_cannot_abort_the_server[rep.py]"]),
    Mutant("rep.default-backlog", "rep.py", "    sock.setsockopt(zmq.BACKLOG, BACKLOG)  #",
           "    pass  #",
           "of a class connecting at once to a busy server, most wait seconds to get in",
           [f"{SERVERS}test_a_class_connecting_at_once_gets_in[rep.py]"]),
    Mutant("rep.keeps-file-limit", "rep.py", *KEEP_FILE_LIMIT,
           "a server under a low open-file limit refuses a class of clients",
           [f"{SERVERS}test_server_raises_a_low_open_file_limit_and_serves_100_clients[rep.py]"]),
    Mutant("rep.refusing-flood", "rep.py", "REFUSING_EVERY = 10", "REFUSING_EVERY = 0",
           "at its open-file limit the server prints a line per refused connection",
           [f"{SERVERS}test_server_at_its_open_file_limit_says_why_once_and_recovers[rep.py]"]),
    Mutant("rep.serves-every-network", "rep.py", 'BIND_ENDPOINT = "tcp://127.0.0.1:5556"',
           'BIND_ENDPOINT = "tcp://*:5556"', "by default the server is open to other machines",
           [DEFAULTS]),
    Mutant("rep.wrong-digest", "rep.py", 'request += b"".join(sock.recv_multipart())',
           'request += b" ".join(sock.recv_multipart())',
           "a multi-frame request gets the wrong digest",
           [f"{HARDENING}test_rep_hashes_odd_requests_and_shows_them_on_one_line"]),
    Mutant("rep.no-hint", "rep.py", *NO_HINT, "an endpoint without tcp:// gets no hint",
           [f"{SINGLE}test_endpoint_without_tcp_gets_a_hint[rep.py---bind]"]),
    # c.py: part 1's client.
    *client_mutants(
        "c.py",
        f"{SILENT}test_part1_client_over_two_servers_drops_the_frozen_one",
        f"{SINGLE}test_client_spread_over_two_servers_survives_losing_one",
    ),
    Mutant("c.wrong-default", "c.py", 'ENDPOINT = "tcp://127.0.0.1:5556"',
           'ENDPOINT = "tcp://127.0.0.1:5557"', "c.py finds no rep.py by default",
           [DEFAULTS]),
    # msgqueue.py: the broker.
    *signal_mutants("msgqueue.py", "msgqueue"),
    Mutant("msgqueue.no-handover", "msgqueue.py",
           "        frontend.setsockopt(zmq.ROUTER_HANDOVER, 1)\n", "",
           "a client back under its name before the broker noticed is never answered again",
           [f"{SERVERS}test_client_reconnecting_before_the_server_noticed_keeps_being_served[msgqueue.py]"]),
    Mutant("msgqueue.no-heartbeat", "msgqueue.py",
           "        backend.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_MS)\n", "",
           "a frozen server keeps being dealt requests, each lost for a --timeout",
           [f"{SILENT}test_frozen_server_is_dropped_then_rejoins_when_thawed"]),
    Mutant("msgqueue.short-heartbeat-timeout", "msgqueue.py",
           "        backend.setsockopt(zmq.HEARTBEAT_TIMEOUT, SILENT_MS)\n", "",
           "a big reply over a slow link is cut by the heartbeat (1 s instead of 3 s)",
           [SLOW_LINK]),
    Mutant("msgqueue.pings-clients", "msgqueue.py",
           "        frontend.setsockopt(zmq.ROUTER_HANDOVER, 1)\n",
           "        frontend.setsockopt(zmq.ROUTER_HANDOVER, 1)\n"
           "        frontend.setsockopt(zmq.HEARTBEAT_IVL, 1000)\n"
           "        frontend.setsockopt(zmq.HEARTBEAT_TIMEOUT, 3000)\n",
           "two connections under one client's name abort the broker",
           [f"{HOSTILE}test_connections_under_one_name_cannot_abort_the_server[msgqueue.py]"]),
    Mutant("msgqueue.no-maxmsgsize", "msgqueue.py",
           "    sock.setsockopt(zmq.MAXMSGSIZE, max_size + (SEALING if secret_key else 0))",
           "    pass",
           "a peer can send the broker a frame of any size: --max-size is ignored",
           [f"{HARDENING}test_oversized_request_drops_that_peer_and_the_broker_serves_the_others"]),
    Mutant("msgqueue.default-backlog", "msgqueue.py",
           "    sock.setsockopt(zmq.BACKLOG, BACKLOG)  #",
           "    pass  #",
           "of a class connecting at once to a busy broker, most wait seconds to get in",
           [f"{SERVERS}test_a_class_connecting_at_once_gets_in[msgqueue.py]"]),
    Mutant("msgqueue.no-sndtimeo", "msgqueue.py", "    sock.setsockopt(zmq.SNDTIMEO, POLL_MS)  #",
           "    pass  #",
           "with requests piled up for a server that reads nothing, the broker never stops",
           [f"{SIGNALS}test_broker_stops_while_its_only_server_reads_nothing_and_requests_pile_up"]),
    Mutant("msgqueue.lingers", "msgqueue.py", *DESTROY_LINGERING,
           "Ctrl-C waits for requests queued for a server that reads nothing: for good",
           [f"{SIGNALS}test_broker_stops_while_its_only_server_reads_nothing_and_requests_pile_up"]),
    Mutant("msgqueue.strands-replies", "msgqueue.py",
           "                while backend.poll(0):\n"
           "                    frontend.send_multipart(backend.recv_multipart())\n",
           "                pass\n",
           "a last server's reply, sent as it leaves, waits in the broker for the next",
           [f"{EXACT}test_a_reply_comes_back_while_no_server_can_take_a_request"]),
    Mutant("msgqueue.spins", "msgqueue.py", "if writable and not stop:", "if not stop:",
           "after its last server left, the broker spins at 100% CPU",
           [f"{STATE}test_broker_never_spins_after_its_last_server_dies_stress"]),
    Mutant("msgqueue.counts-junk", "msgqueue.py", "            self.unknown.add(value)\n",
           "            self.servers.add(value)\n",
           "a port scan or an HTTP request is counted as a server",
           [f"{STATE}test_broker_counts_only_real_servers"]),
    Mutant("msgqueue.keeps-file-limit", "msgqueue.py", *KEEP_FILE_LIMIT,
           "a broker under a low open-file limit refuses a class of clients",
           [f"{SERVERS}test_server_raises_a_low_open_file_limit_and_serves_100_clients[msgqueue.py]"]),
    Mutant("msgqueue.refusing-flood", "msgqueue.py", "REFUSING_EVERY = 10", "REFUSING_EVERY = 0",
           "at its open-file limit the broker prints a line per refused connection",
           [f"{SERVERS}test_server_at_its_open_file_limit_says_why_once_and_recovers[msgqueue.py]"]),
    Mutant("msgqueue.serves-every-network", "msgqueue.py",
           'FRONTEND_ENDPOINT = "tcp://127.0.0.1:5559"', 'FRONTEND_ENDPOINT = "tcp://*:5559"',
           "by default the broker is open to other machines", [DEFAULTS]),
    Mutant("msgqueue.long-waits", "msgqueue.py",
           "zmq.select(monitors + ours, ours, [], POLL_MS / 1000)",
           "zmq.select(monitors + ours, ours, [], None)",
           "where a signal does not interrupt a wait (Windows), Ctrl-C is not seen",
           [f"{SIGNALS}test_signal_stops_script_where_signals_do_not_interrupt[msgqueue.py]"]),
    Mutant("msgqueue.leaves-control-open", "msgqueue.py",
           "        control.close()\n        steer.close()\n", "",
           "under python -W error the broker prints 'stopped', then hangs for good",
           [f"{SIGNALS}test_script_stops_cleanly_with_warnings_as_errors[msgqueue.py]"]),
    Mutant("msgqueue.no-hint", "msgqueue.py", *NO_HINT, "an endpoint without tcp:// gets no hint",
           [f"{SINGLE}test_endpoint_without_tcp_gets_a_hint[msgqueue.py---frontend]"]),
    Mutant("msgqueue.no-drain", "msgqueue.py",
           "            while sock.getsockopt(zmq.RCVMORE):\n"
           "                sock.recv(zmq.NOBLOCK)\n",
           "            pass\n",
           "a request half moved when a send gives up reaches a server later without its envelope",
           [f"{EXACT}test_request_half_moved_when_a_send_gives_up_is_dropped_whole"]),
    Mutant("msgqueue.trusts-any", "msgqueue.py",
           "        if self.low == left:",
           "        if self.low:",
           "a half-open connection open while a server connected is counted as a server",
           [HALF_OPEN_CLOSED]),
    Mutant("msgqueue.sure-when-unsure", "msgqueue.py",
           "                self.low = max(self.low - 1, 0)\n",
           "                self.low, self.high = max(self.low - 1, 0), max(self.high - 1, 0)\n",
           "where the events cannot tell whether a server left, the count guesses",
           [f"{EXACT}test_server_killed_while_a_half_open_connection_stays[during-handshake]"]),
    Mutant("msgqueue.ignores-failed", "msgqueue.py", "            if not failed:  # a server left",
           "            if True:  # a server left",
           "a half-open connection closing makes the count unsure",
           [HALF_OPEN_CLOSED]),
    Mutant("msgqueue.no-unseen-line", "msgqueue.py",
           "            servers.check_unseen(writable)\n", "",
           "a ZeroMQ 2 server takes the requests and the broker still says none is connected",
           [f"{EXACT}test_zmtp1_peer_alone_is_dealt_requests_and_said_to_be_uncounted"]),
    # mrep.py: part 2's server.
    *server_mutants(
        "mrep.py",
        f"{SERVERS}test_stopped_server_answers_the_request_in_hand[mrep.py]",
        f"{HARDENING}test_oversized_request_for_mrep_costs_one_reconnect",
    ),
    Mutant("mrep.no-heartbeat", "mrep.py", *HEARTBEAT,
           "a server never notices a frozen broker, and does not say so",
           [f"{SILENT}test_frozen_only_broker_clients_wait_then_resume"]),
    Mutant("mrep.short-heartbeat-timeout", "mrep.py", *HEARTBEAT_TIMEOUT,
           "a big request over a slow link is cut by the heartbeat (1 s instead of 3 s)",
           [SLOW_LINK]),
    Mutant("mrep.no-reconnect", "mrep.py",
           'reconnecting")\n                self.sock.connect(endpoint)\n', 'reconnecting")\n',
           "a server that lost its broker never comes back to it",
           [f"{BROKERED}test_broker_crash_and_restart_everyone_carries_on"]),
    Mutant("mrep.no-backoff", "mrep.py", "wait = self.retry_in.get(endpoint, RETRY_FIRST)",
           "wait = 0", "pointed at the wrong port, the server retries flat out",
           [f"{STATE}test_mrep_on_the_wrong_port_says_so_once_and_backs_off"]),
    Mutant("mrep.follows-only-idle", "mrep.py",
           "        if time.monotonic() > brokers.followed + POLL_MS / 1000:",
           "        if False:", "a server kept busy by one broker never sees another come",
           [f"{STATE}test_mrep_kept_busy_by_one_broker_still_sees_another_come"]),
    Mutant("mrep.first-frame-only", "mrep.py", 'request += b"".join(sock.recv_multipart())',
           "sock.recv_multipart()", "a request of several frames is answered in part",
           [f"{HARDENING}test_mrep_answers_odd_requests_with_their_frames_joined"]),
    Mutant("mrep.wrong-default", "mrep.py", 'BROKER_ENDPOINT = "tcp://127.0.0.1:5560"',
           'BROKER_ENDPOINT = "tcp://127.0.0.1:5559"', "mrep.py finds no broker by default",
           [DEFAULTS]),
    Mutant("mrep.no-hint", "mrep.py", *NO_HINT, "an endpoint without tcp:// gets no hint",
           [f"{SINGLE}test_endpoint_without_tcp_gets_a_hint[mrep.py---connect]"]),
    # mreq.py: part 2's client.
    *client_mutants(
        "mreq.py",
        f"{SILENT}test_frozen_broker_of_two_is_dropped_and_everyone_resumes_through_both",
        f"{BROKERED}test_two_brokers_one_crashes_everyone_carries_on",
    ),
    Mutant("mreq.wrong-default", "mreq.py", 'ENDPOINT = "tcp://127.0.0.1:5559"',
           'ENDPOINT = "tcp://127.0.0.1:5560"', "mreq.py finds no broker by default",
           [DEFAULTS]),
]  # fmt: skip

# Output that cannot be written, and endpoints that cannot work: the same pieces
# in every script (one mutant per piece and script kind).
OUTPUT = "tests/test_output.py::"
ODD = "tests/test_odd_endpoints.py::"
BAD_NUMBER = f"{SINGLE}test_bad_numbers_are_refused_by_argparse_naming_only_that_flag"
BAD_ENDPOINT = f"{SINGLE}test_bad_endpoint_is_one_clear_line"
PRINT_FAILS = (
    "    except OSError:  # nobody reads",
    "    except ZeroDivisionError:  # nobody reads",
)
KILLABLE_EXITING = ("            signal.signal(later, signal.SIG_IGN)", "            pass")
PORT_JUNK = '        refuse(endpoint, "connect to", "no port number at its end'
TAKES_PORT_JUNK = (PORT_JUNK, f"        return endpoint\n{PORT_JUNK}")
RESOLVE = '    family = socket.AF_INET6 if ":" in host else socket.AF_INET'
TRUSTS_NAMES = (RESOLVE, f"    return endpoint\n{RESOLVE}")
STRICT_ENCODING = ('        sys.stdout.reconfigure(errors="backslashreplace")', "        pass")
MUTANTS += [
    Mutant("rep.print-fails", "rep.py", *PRINT_FAILS,
           "`rep.py | tee log`, Ctrl-C: a traceback, and the request in hand is never answered",
           [f"{OUTPUT}test_server_whose_reader_went_away_answers_the_request_in_hand[rep.py]"]),
    Mutant("mrep.print-fails", "mrep.py", *PRINT_FAILS,
           "a closed terminal kills the server at its next request, and that request",
           [f"{OUTPUT}test_server_whose_reader_went_away_answers_the_request_in_hand[mrep.py]"]),
    Mutant("msgqueue.print-fails", "msgqueue.py", *PRINT_FAILS,
           "`msgqueue.py | head -1` dies when the first server connects",
           [f"{OUTPUT}test_broker_whose_reader_went_away_keeps_brokering"]),
    Mutant("c.print-fails", "c.py", *PRINT_FAILS, "`c.py > /dev/full`: a traceback",
           [f"{OUTPUT}test_every_script_works_with_a_full_disk_for_stdout[c.py]"]),
    Mutant("mreq.print-fails", "mreq.py", *PRINT_FAILS, "`mreq.py > /dev/full`: a traceback",
           [f"{OUTPUT}test_every_script_works_with_a_full_disk_for_stdout[mreq.py]"]),
    Mutant("c.runs-on-unseen", "c.py", "        signal.raise_signal(signal.SIGTERM)",
           "        pass", "`c.py | head -3` never ends: the client runs on, printing to nobody",
           [f"{OUTPUT}test_client_whose_reader_went_away_stops_with_status_0[c.py]"]),
    Mutant("mreq.runs-on-unseen", "mreq.py", "        signal.raise_signal(signal.SIGTERM)",
           "        pass", "`mreq.py | head -3` never ends",
           [f"{OUTPUT}test_client_whose_reader_went_away_stops_with_status_0[mreq.py]"]),
    Mutant("rep.strict-encoding", "rep.py", *STRICT_ENCODING,
           "on an ASCII-only terminal, a request of accented letters kills the server",
           [f"{OUTPUT}test_a_request_a_terminal_cannot_show_is_answered_and_shown_escaped[rep.py]"]),
    Mutant("mrep.strict-encoding", "mrep.py", *STRICT_ENCODING,
           "on an ASCII-only terminal, one request, resent, kills every server",
           [f"{OUTPUT}test_a_request_a_terminal_cannot_show_is_answered_and_shown_escaped[mrep.py]"]),
    Mutant("c.strict-encoding", "c.py", *STRICT_ENCODING,
           "on an ASCII-only terminal, a reply of accented letters kills the client",
           [f"{OUTPUT}test_a_reply_a_terminal_cannot_show_is_shown_escaped[c.py]"]),
    Mutant("mreq.strict-encoding", "mreq.py", *STRICT_ENCODING,
           "on an ASCII-only terminal, a reply of accented letters kills the client",
           [f"{OUTPUT}test_a_reply_a_terminal_cannot_show_is_shown_escaped[mreq.py]"]),
    Mutant("rep.no-ipv6", "rep.py", "        sock.setsockopt(zmq.IPV6, 1)", "        pass",
           "tcp://[::1]:5556 is refused: No such device",
           [f"{ODD}test_ipv6_endpoints_work_for_every_script"]),
    Mutant("mreq.no-ipv6", "mreq.py", "        sock.setsockopt(zmq.IPV6, 1)", "        pass",
           "a client pointed at tcp://[::1]:5559 is never served",
           [f"{ODD}test_ipv6_endpoints_work_for_every_script"]),
    Mutant("rep.takes-inproc", "rep.py", 'if scheme == "inproc":', "if False:",
           "--bind inproc://x is taken, and no client can ever reach it",
           [f"{BAD_ENDPOINT}[rep.py-inproc]"]),
    Mutant("mreq.takes-inproc", "mreq.py", 'if scheme == "inproc":', "if False:",
           "--connect inproc://x waits forever", [f"{BAD_ENDPOINT}[mreq.py-inproc]"]),
    Mutant("msgqueue.non-ascii-port", "msgqueue.py", "port.isascii() and port.isdigit()",
           "port.isdigit()", "a port of superscript digits: a ValueError traceback",
           [f"{BAD_ENDPOINT}[msgqueue.py-superscript-port]"]),
    Mutant("c.trusts-names", "c.py", *TRUSTS_NAMES,
           "two names for one server flap its connection (resends); a bad name, silence",
           [f"{ODD}test_two_names_for_one_server_make_one_connection[c.py]"]),
    Mutant("mrep.trusts-names", "mrep.py", *TRUSTS_NAMES,
           "a server given two names for its broker is counted twice",
           [f"{ODD}test_a_server_given_two_names_for_its_broker_is_counted_once"]),
    Mutant("mreq.connects-twice", "mreq.py", "        if where not in connected:",
           "        if True:", "one endpoint given twice: two connections under one name",
           [f"{ODD}test_two_names_for_one_server_make_one_connection[mreq.py]"]),
    Mutant("mrep.empty-connect", "mrep.py", "    if not endpoints:", "    if False:",
           '--connect "": the server says nothing and serves nobody',
           [f"{BAD_NUMBER}[mrep.py-args19]"]),
    Mutant("msgqueue.tiny-max-size", "msgqueue.py", "MIN_SIZE = 512", "MIN_SIZE = 1",
           "--max-size 1 breaks every handshake: servers connect and drop, 100 times a second",
           [f"{BAD_NUMBER}[msgqueue.py-args13]"]),
    Mutant("rep.drifts", "rep.py",
           '?)"  # the usual slip\n', '?)"\n',
           "a shared piece fixed in one script and not in its twins",
           ["tests/test_twins.py::test_shared_piece_is_the_same_text_in_every_script[refuse-rep.py]"]),
    Mutant("c.hardcoded-name", "c.py", "NAME = os.path.basename(__file__)", 'NAME = "c.py"',
           "a copy of c.py (player.py) says c.py in its messages",
           [f"{SINGLE}test_a_copied_script_speaks_its_own_name[c.py---connect]"]),
    Mutant("rep.killable-exiting", "rep.py", *KILLABLE_EXITING,
           "a second Ctrl-C while the server exits kills it (status -2)",
           [f"{SIGNALS}test_more_signals_while_a_script_exits_do_not_kill_it[rep.py]"]),
    Mutant("mreq.killable-exiting", "mreq.py", *KILLABLE_EXITING,
           "a second Ctrl-C while the client exits kills it (status -2)",
           [f"{SIGNALS}test_more_signals_while_a_script_exits_do_not_kill_it[mreq.py]"]),
    Mutant("c.takes-port-junk", "c.py", *TAKES_PORT_JUNK,
           "tcp://127.0.0.1:6180x connects to port 6180 (and skips the host check)",
           [f"{BAD_ENDPOINT}[c.py-port-junk]"]),
    Mutant("rep.takes-port-junk", "rep.py", "if not (port.isascii() and port.isdigit()):",
           "if False:",
           "--bind tcp://127.0.0.1:-1 serves on port 65535", [f"{BAD_ENDPOINT}[rep.py-port-junk]"]),
    Mutant("mrep.connects-port-0", "mrep.py", "    if int(port) == 0:", "    if False:",
           "--connect tcp://127.0.0.1:0 waits forever", [f"{BAD_ENDPOINT}[mrep.py-port-0]"]),
    Mutant("mreq.idna-traceback", "mreq.py", "    except UnicodeError:", "    except KeyError:",
           "--connect tcp://a..b:1: a UnicodeError traceback",
           [f"{BAD_ENDPOINT}[mreq.py-bad-name]"]),
    Mutant("msgqueue.unprintable", "msgqueue.py", "    if not endpoint.isprintable():",
           "    if False:", "an endpoint of bytes that are not UTF-8: a traceback",
           [f"{BAD_ENDPOINT}[msgqueue.py-not-utf8]"]),
    Mutant("rep.huge-max-size", "rep.py", "<= args.max_size < 2**63 - SEALING:",
           "<= args.max_size:",
           "--max-size 10**20: an OverflowError traceback", [f"{BAD_NUMBER}[rep.py-args20]"]),
    Mutant("c.tiny-timeout", "c.py", "if not 0.1 <= args.timeout", "if not 0 < args.timeout",
           "--timeout 1e-9 prints 220,000 lines a second and never sends",
           [f"{BAD_NUMBER}[c.py-args15]"]),
    # --secret, and two servers on one endpoint.
    Mutant("rep.no-curve", "rep.py", "        sock.curve_server = True\n", "",
           "rep.py --secret speaks in the clear: no client with the phrase is ever served",
           [f"{SECRET}test_the_phrase_can_come_from_the_environment"]),
    Mutant("msgqueue.plain-back-end", "msgqueue.py", "    if secret_key:  # --secret",
           "    if secret_key and kind == zmq.ROUTER:  # --secret",
           "servers without the phrase join the broker and are dealt requests",
           [ONLY_PHRASE]),
    Mutant("mrep.wrong-server-key", "mrep.py", "sock.curve_serverkey = curve_keys(secret)[0]",
           "sock.curve_serverkey = curve_keys(secret)[1]",
           "a server with the right phrase never joins a --secret broker", [ONLY_PHRASE]),
    Mutant("mrep.own-salt", "mrep.py", 'SALT = b"zmq-reqrep-tutorial --secret"',
           'SALT = b"zmq-reqrep-tutorial --secret v2"',
           "the same phrase gives mrep.py other keys: it never joins", [ONLY_PHRASE]),
    Mutant("mreq.tells-every-time", "mreq.py", "        if endpoint not in self.told:\n",
           "        if True:\n", "a refused client says why again at every try, 10 lines a second",
           [ONLY_PHRASE]),
    Mutant("mreq.quiet-on-other-phrase", "mreq.py",
           "            events |= zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL\n", "            pass\n",
           "a client with another phrase only says no broker is reachable, never why",
           [ONLY_PHRASE]),
    Mutant("c.gives-up-after-mismatch", "c.py",
           "                    self.sock.disconnect(endpoint)  # connect anew: libzmq would not\n"
           "                    self.sock.connect(endpoint)\n",
           "                    pass\n",
           "after a --secret mismatch the client never tries that server again, even fixed",
           [f"{SECRET}test_a_client_refused_for_a_mismatch_tries_again_and_is_served_later"]),
    Mutant("c.retried-by-address", "c.py",
           'endpoint = as_given(self.connected, event["endpoint"].decode())',
           'endpoint = event["endpoint"].decode()',
           "--connect tcp://localhost:P: a refusing server is named twice, and after a"
           " mismatch it is never tried again",
           [f"{SECRET}test_a_refusing_server_is_named_once_as_it_was_given",
            f"{SECRET}test_a_client_refused_for_a_mismatch_tries_again_and_is_served_later"]),
    Mutant("mrep.second-disconnect-fatal", "mrep.py",
           "            except zmq.ZMQError:  # done already",
           "            except KeyError:  # done already",
           "a busy server with a broker that refuses it dies, and its request in hand is lost",
           [f"{SECRET}test_a_busy_server_refused_by_one_broker_serves_through_the_other"]),
    Mutant("c.phrase-as-typed", "c.py", 'unicodedata.normalize("NFC", phrase)', "phrase",
           "café typed with a combining accent is another phrase: never served",
           [f"{SECRET}test_a_phrase_is_the_same_however_its_accents_were_typed"]),
    Mutant("c.empty-secret-ignored", "c.py", '    if args.secret == "":', "    if False:",
           '--secret "" runs in the clear instead of being refused',
           [f"{SECRET}test_an_empty_phrase_is_refused_not_ignored[c.py]"]),
    Mutant("rep.sealing-counted", "rep.py", "SEALING = 33  #", "SEALING = 0  #",
           "with --secret, a request of --max-size bytes drops its client",
           [f"{SECRET}test_max_size_counts_the_data_and_every_handshake_fits"]),
    Mutant("rep.takes-live-ipc-path", "rep.py",
           '    if scheme == "ipc":\n        check_ipc_path(endpoint, address)\n', "",
           "a second rep.py on an ipc path in use takes it over; the first serves nobody",
           [f"{SECRET}test_a_second_server_on_a_live_ipc_path_refuses_and_the_first_serves_on[rep.py]"]),
    Mutant("msgqueue.takes-live-ipc-path", "msgqueue.py",
           '    refuse(endpoint, "bind", "in use by a server")\n', "",
           "a second broker on an ipc path in use takes it over",
           [f"{SECRET}test_a_second_server_on_a_live_ipc_path_refuses_and_the_first_serves_on[msgqueue.py]"]),
    Mutant("rep.refuses-stale-ipc-path", "rep.py",
           "        except ConnectionRefusedError:  # a socket file left by an earlier run: free\n"
           "            return\n",
           "        except ConnectionRefusedError:  # a socket file left by an earlier run: free\n"
           '            refuse(endpoint, "bind", "in use")\n',
           "a path an earlier run left behind can never be served on again",
           [f"{SECRET}test_an_ipc_path_left_by_an_earlier_run_is_reused_and_a_plain_file_kept"]),
    Mutant("rep.deletes-a-file", "rep.py", "    if not stat.S_ISSOCK(mode):", "    if False:",
           "--bind ipc://notes.txt deletes the file",
           [f"{SECRET}test_an_ipc_path_left_by_an_earlier_run_is_reused_and_a_plain_file_kept"]),
]  # fmt: skip

# Mutants no test can kill, and why. The README lists the same, and run.py fails
# if one of them is killed (the list is stale) or another one survives.
SURVIVORS = {
    "rep.linger-0": "rep.py's reply is a 40-byte digest: it is in the kernel before the"
    " socket closes, unless the client has stopped reading thousands of replies, and then"
    " half a second of LINGER does not save it either.",
    "c.lingers": "with IMMEDIATE, a request is only queued on a live connection, and one"
    " of under 100 bytes is in the kernel at once: nothing is ever left to linger.",
    "mreq.lingers": "as for c.lingers.",
}
