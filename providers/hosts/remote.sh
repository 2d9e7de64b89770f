# The host side of the ``hosts`` compute adapter, run by POSIX sh over SSH as
#   sh -c "<this script>" failover-hosts ROOT COMMAND ARGS...
# Each host runs at most one instance, in ROOT/<id>/ (instance.json, user-data, console.log, pgid).
# ROOT/.claim/ (created with mkdir, which is atomic) says the host is taken, so two runs placing
# instances at once never put two on one host; a claim a dead create left is taken back after a minute. The user-data runs in its own session (setsid), its
# output to console.log, stdin from /dev/null: it survives the SSH session; pgid names its group.
set -eu
root=$1
cmd=$2
shift 2
case $root in "~/"*) root=$HOME/${root#"~/"} ;; esac

alive() { [ -s "$1/pgid" ] && kill -0 "-$(cat "$1/pgid")" 2>/dev/null; }

halt() { # DIR TIMEOUT_SECONDS
    alive "$1" || return 0
    group=$(cat "$1/pgid")
    kill -TERM "-$group" 2>/dev/null || true
    ticks=0
    while kill -0 "-$group" 2>/dev/null && [ "$ticks" -lt $(($2 * 10)) ]; do
        sleep 0.1
        ticks=$((ticks + 1))
    done
    kill -KILL "-$group" 2>/dev/null || true
}

# A claim that names no instance is what a create left when it died between claiming the host and
# writing the instance (or one being written this second): after a minute it is taken back. Under a
# second mkdir lock, so that two runs taking back the same claim never both get the host.
reclaim() {
    mkdir "$root/.reclaim" 2>/dev/null || return 1
    taken=$(cat "$root/.claim/id" 2>/dev/null || true)
    if { [ -z "$taken" ] || [ ! -f "$root/$taken/instance.json" ]; } &&
        [ -n "$(find "$root/.claim" -maxdepth 0 -mmin +1 2>/dev/null)" ]; then
        rm -rf "$root/.claim"
        case $taken in *[!0-9a-fh-]*) ;; h-?*) rm -rf "${root:?}/$taken" ;; esac
        if mkdir "$root/.claim" 2>/dev/null; then
            rmdir "$root/.reclaim"
            return 0
        fi
    fi
    rmdir "$root/.reclaim"
    return 1
}

case $cmd in
list)
    [ -d "$root" ] || exit 0
    for file in "$root"/*/instance.json; do
        [ -f "$file" ] || continue
        dir=${file%/instance.json}
        if alive "$dir"; then state=running; else state=stopped; fi
        printf '%s ' "$state"
        tr -d '\n' <"$file"
        printf '\n'
    done
    ;;
claim) # ID INSTANCE_JSON_BASE64 HAS_USER_DATA (1/0); the user-data itself on stdin, never in argv,
       # where any user of the host could read it (ps)
    mkdir -p "$root"
    if ! mkdir "$root/.claim" 2>/dev/null && ! reclaim; then
        echo "taken $(cat "$root/.claim/id" 2>/dev/null || true)"
        exit 0
    fi
    printf '%s' "$1" >"$root/.claim/id"
    mkdir "$root/$1"
    printf '%s' "$2" | base64 -d >"$root/$1/instance.json"
    if [ "$3" = 1 ]; then (umask 077 && cat >"$root/$1/user-data"); else cat >/dev/null; fi
    echo claimed
    ;;
boot) # ID NAME ADDRESS SHELL
    dir=$root/$1
    [ -d "$dir" ] || { echo missing; exit 0; }
    if alive "$dir"; then echo running; exit 0; fi
    cd "$dir"
    rm -f pgid
    if [ -s user-data ]; then set -- "$1" "$2" "$3" "$4" ./user-data; else set -- "$1" "$2" "$3" sleep 2147483647; fi
    id=$1 name=$2 address=$3
    shift 3
    INSTANCE_ID=$id INSTANCE_NAME=$name INSTANCE_ADDRESS=$address HOME=$dir \
        setsid sh -c 'echo $$ >pgid; exec "$@"' instance "$@" </dev/null >>console.log 2>&1 &
    ticks=0
    while [ ! -s pgid ] && [ "$ticks" -lt 100 ]; do sleep 0.05; ticks=$((ticks + 1)); done
    echo started
    ;;
stop) # ID TIMEOUT_SECONDS
    dir=$root/$1
    [ -d "$dir" ] || { echo missing; exit 0; }
    halt "$dir" "$2"
    echo stopped
    ;;
destroy) # ID TIMEOUT_SECONDS
    dir=$root/$1
    [ -d "$dir" ] || { echo missing; exit 0; }
    halt "$dir" "$2"
    rm -rf "$dir"
    if [ "$(cat "$root/.claim/id" 2>/dev/null || true)" = "$1" ]; then rm -rf "$root/.claim"; fi
    echo destroyed
    ;;
user-data) # ID
    dir=$root/$1
    [ -d "$dir" ] || { echo missing; exit 0; }
    if [ -f "$dir/user-data" ]; then printf 'script\n'; cat "$dir/user-data"; else echo none; fi
    ;;
*)
    echo "unknown command $cmd" >&2
    exit 2
    ;;
esac
