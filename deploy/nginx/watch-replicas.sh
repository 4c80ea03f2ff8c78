#!/bin/sh
# The proxy's entry point: nginx in the foreground, reloaded whenever the addresses behind
# the name `server` change (a scale up or down, a replica gone or back with a new address),
# because nginx resolves upstream names only at start and on reload.
set -u
UPSTREAM_NAME=${UPSTREAM_NAME:-server}
CHECK_SECONDS=${CHECK_SECONDS:-2}

replicas() {
    getent ahostsv4 "$UPSTREAM_NAME" | awk '{ print $1 }' | sort -u | tr '\n' ' '
}

nginx -g 'daemon off;' &
nginx_pid=$!
trap 'kill -QUIT "$nginx_pid" 2>/dev/null; wait "$nginx_pid"; exit 0' TERM INT QUIT

known=$(replicas)
echo "watch-replicas: $UPSTREAM_NAME is $known"
while kill -0 "$nginx_pid" 2>/dev/null; do
    sleep "$CHECK_SECONDS" &
    wait $!
    now=$(replicas)
    # No address at all (every replica down): keep the last list rather than fail a reload.
    if [ -n "$now" ] && [ "$now" != "$known" ]; then
        echo "watch-replicas: $UPSTREAM_NAME is now $now; reloading"
        nginx -s reload && known=$now
    fi
done
wait "$nginx_pid"
