# Sourced by the device scripts (gpu_speed.sh, gpu_curves.sh): Ctrl-C or a TERM stops the script and every run it
# started. Their runs go under timeout, whose process group is its own (the terminal's Ctrl-C does not reach it),
# or as background jobs, which ignore Ctrl-C; so the handler ends the script's whole tree of processes, leaves first.
# STOP_NAME: how the script names itself in the message.
stop_runs() { trap - INT TERM; echo "[${STOP_NAME:-run}] interrupted: stopping its runs" >&2; kill_tree $$; exit 130; }
kill_tree() {
    local child
    for child in $(pgrep -P "$1"); do kill_tree "$child"; done
    [ "$1" = $$ ] || kill "$1" 2> /dev/null
}
trap stop_runs INT TERM
