# Shared by the scripts/ci checks that read packed tarballs; source it from the repository root.

# Sets `tarballs` to the tarballs in DIR ($1), or, without DIR, packs into a temporary directory first.
packed_tarballs() {
  local dir=${1:-}
  if [[ -z $dir ]]; then
    dir=$(mktemp -d)
    cleanup+=("$dir")
    scripts/ci/pack.sh "$dir" >/dev/null
  fi
  shopt -s nullglob
  tarballs=("$(cd "$dir" && pwd)"/*.tgz)
  shopt -u nullglob
  ((${#tarballs[@]} > 0)) || { echo "no tarballs in $dir" >&2; return 1; }
}

# Prints the failures collected in `failed` and fails, or prints the success line ($1).
report_checks() {
  if ((${#failed[@]} > 0)); then
    printf '\nfailed: %s\n' "${failed[*]}" >&2
    return 1
  fi
  printf '\n%s\n' "$1"
}

cleanup=()
failed=()
trap 'rm -rf "${cleanup[@]}"' EXIT
