#!/bin/sh
# The entry point of scheduled runs (examples/kubernetes/cronjob.yaml, examples/argo/):
#
#   scheduled-run.sh run WORKFLOW --cluster NAME --state s3://BUCKET/PREFIX [run options...]
#
# `eks-upgrade run` always starts a new run, and `eks-upgrade resume` continues one from its
# journal. A pod keeps no disk, so the journal lives in S3, and each scheduled pod decides here
# which of the two to call, from `eks-upgrade runs --output json` for this cluster:
#
#   1. a journal in the store cannot be used (cut short, edited, from a newer release, or
#      unreadable) and may be this cluster's: that run may have stopped mid-upgrade, so start
#      nothing and exit 5, until a person acknowledges it;
#   2. the newest run of this cluster ended (or paused) with exit 5, "a human is needed":
#      start nothing and exit 5 again, until a person acknowledges that run (or resumes it by
#      hand);
#   3. a run of this cluster is unfinished (the pod was killed, evicted or interrupted, or the
#      window closed between hops) and not acknowledged: `eks-upgrade resume RUN_ID` with the
#      same options, minus those resume takes from the journal (--cluster, --region, --target);
#   4. otherwise: `eks-upgrade run WORKFLOW` with the options as given.
#
# A person acknowledges runs by listing their ids, comma-separated, in
# EKS_UPGRADE_ACKNOWLEDGED_RUN: "I have looked at the cluster; leave these runs alone and go on".
# `eks-upgrade run` reads the same variable (its `--acknowledge`).
#
# The exit code is eks-upgrade's (0, 2, 3, 4, 5, 130); the journal store being unreadable is
# exit 3, since nothing was started. tests/it/deploy/ runs this script.
set -u

say() { printf 'scheduled-run: %s\n' "$*" >&2; }

if [ "${1:-}" != run ] || [ $# -lt 2 ]; then
    say "usage: scheduled-run.sh run WORKFLOW --cluster NAME --state s3://BUCKET/PREFIX [options]"
    exit 2
fi
shift
workflow=$1
shift

# The cluster and the store, from the options or the variables the CLI reads them from.
cluster=${EKS_UPGRADE_CLUSTER:-}
state=${EKS_UPGRADE_STATE:-}
prev=
for arg in "$@"; do
    case $prev in
        --cluster) cluster=$arg ;;
        --state) state=$arg ;;
    esac
    case $arg in
        --cluster=*) cluster=${arg#--cluster=} ;;
        --state=*) state=${arg#--state=} ;;
    esac
    prev=$arg
done
if [ -z "$cluster" ]; then
    say "name the cluster (--cluster or EKS_UPGRADE_CLUSTER): its runs are found by name"
    exit 2
fi
case $state in
    s3://*) ;;
    *)
        # A journal on the pod's disk dies with the pod, and with it the chance to resume.
        say "keep journals in S3 (--state s3://BUCKET/PREFIX or EKS_UPGRADE_STATE); got '${state}'"
        exit 2
        ;;
esac

# Whether run $1 is among the acknowledged ones.
acknowledged() {
    case ",$(printf '%s' "${EKS_UPGRADE_ACKNOWLEDGED_RUN:-}" | tr -d ' ')," in
        *",$1,"*) return 0 ;;
    esac
    return 1
}

if ! runs=$(eks-upgrade runs --output json --state "$state"); then
    say "cannot read the runs in $state; starting nothing"
    exit 3
fi

# `runs --output json` is pretty-printed serde JSON, newest run first, one field per line:
#   "runId": "…", "cluster": "…", "state": { "state": "upgrade", "hop": 1 }, "exitCode": 5 | null
# Splitting lines on double quotes makes $2 the key and $4 a string value.
# A journal that cannot be used is listed with `"damaged": "what is wrong"`, its `location`,
# and the `cluster` it names, or null when even that cannot be read (it may be any cluster's).
damaged=$(printf '%s\n' "$runs" | awk -F'"' -v cluster="$cluster" '
    $2 == "runId" { id = $4; bad = 0 }
    $2 == "damaged" { bad = 1 }
    $2 == "location" { where = $4 }
    $2 == "cluster" && bad && ($4 == cluster || $4 == "") { print id, where }
')
blocked=
while read -r id where; do
    [ -n "$id" ] || continue
    acknowledged "$id" && continue
    say "the journal of run $id ($where) cannot be used, and that run may have stopped mid-upgrade; starting nothing"
    blocked="${blocked:+$blocked,}$id"
done <<EOF_DAMAGED
$damaged
EOF_DAMAGED
if [ -n "$blocked" ]; then
    say "see what is wrong: eks-upgrade runs --state $state"
    say "check cluster $cluster first; once it is sound, set EKS_UPGRADE_ACKNOWLEDGED_RUN=$blocked to let schedules continue"
    exit 5
fi

newest=$(printf '%s\n' "$runs" | awk -F'"' -v cluster="$cluster" '
    $2 == "runId" { id = $4 }
    $2 == "cluster" { c = $4 }
    $2 == "exitCode" && c == cluster { code = $3; gsub(/[^0-9a-z]/, "", code); print id, code; exit }
')
unfinished=
for id in $(printf '%s\n' "$runs" | awk -F'"' -v cluster="$cluster" '
    $2 == "runId" { id = $4 }
    $2 == "cluster" { c = $4 }
    $2 == "state" && $4 != "" && c == cluster && $4 != "done" { print id }
'); do
    # An acknowledged run is a person's now: it is not resumed behind their back.
    if ! acknowledged "$id"; then
        unfinished=$id
        break
    fi
done

newest_id=${newest%% *}
newest_code=${newest##* }
if [ -n "$newest" ] && [ "$newest_code" = 5 ] \
    && ! acknowledged "$newest_id"; then
    say "run $newest_id on cluster $cluster ended with exit 5: a human is needed; starting nothing"
    say "read it: eks-upgrade status $newest_id --state $state"
    say "once the cluster is sound, set EKS_UPGRADE_ACKNOWLEDGED_RUN=$newest_id to let schedules continue"
    exit 5
fi

if [ -n "$unfinished" ]; then
    # Rebuild "$@" without what `resume` does not accept: the journal names the cluster, its
    # region and the hops. Each argument is taken from the front and re-appended if kept.
    n=$#
    skip=
    while [ "$n" -gt 0 ]; do
        arg=$1
        shift
        n=$((n - 1))
        if [ -n "$skip" ]; then
            skip=
            continue
        fi
        case $arg in
            --cluster | --region | --target) skip=1; continue ;;
            --cluster=* | --region=* | --target=*) continue ;;
        esac
        set -- "$@" "$arg"
    done
    say "resuming run $unfinished of cluster $cluster"
    exec eks-upgrade resume "$unfinished" "$@"
fi

say "no unfinished run of cluster $cluster; starting a new one"
exec eks-upgrade run "$workflow" "$@"
