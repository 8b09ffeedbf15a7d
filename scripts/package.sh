#!/usr/bin/env bash
# Build every Lambda (functions/<name>, binary <name>) with cargo-lambda into
# dist/lambda/<name>.zip, the paths infra/terraform expects (var.lambda_dist_dir).
#
#   LABFLOW_ARCH=arm64 (default) | x86_64   must match Terraform's lambda_architecture
#   LABFLOW_DIST_DIR                         default <repo>/dist/lambda
#   LABFLOW_VENV                             default <repo>/.venv (cargo-lambda + ziglang go there)
#   CARGO_TARGET_DIR                         default <repo>/target (cargo's own variable; cargo-lambda
#                                            writes its per-function zips under <it>/lambda-<arch>)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${LABFLOW_VENV:-$root/.venv}"
arch="${LABFLOW_ARCH:-arm64}"
dist_dir="${LABFLOW_DIST_DIR:-$root/dist/lambda}"
requirements="$root/requirements-infra.txt"
python="${PYTHON:-python3}"

case "$arch" in
    arm64) arch_flag=--arm64; target=aarch64-unknown-linux-gnu ;;
    x86_64) arch_flag=--x86-64; target=x86_64-unknown-linux-gnu ;;
    *) echo "package: LABFLOW_ARCH must be arm64 or x86_64, got '$arch'" >&2; exit 2 ;;
esac

# cargo-lambda and zig (the cross linker) from PyPI: prebuilt, no dependencies.
stamp="$venv/.infra-installed"
if [[ ! -x "$venv/bin/cargo-lambda" || ! -f "$stamp" || "$requirements" -nt "$stamp" ]] \
    || ! "$venv/bin/python" -m ziglang version >/dev/null 2>&1; then
    echo "package: installing $(grep -v '^#' "${requirements%.txt}.in" | xargs) into $venv" >&2
    [[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes -r "$requirements"
    touch "$stamp"
fi
# cargo-lambda finds zig as `python3 -m ziglang` on PATH.
export PATH="$venv/bin:$PATH"

# The Rust standard library for the target (cargo-lambda would try the same).
if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi

# Every function crate: functions/<name> with a binary <name> (core is a library).
functions=()
for manifest in "$root"/functions/*/Cargo.toml; do
    name="$(basename "$(dirname "$manifest")")"
    [[ "$name" == core ]] && continue
    if ! grep -Eq "^name = \"$name\"" "$manifest"; then
        echo "package: functions/$name has no binary named $name" >&2
        exit 1
    fi
    functions+=("$name")
done

bin_args=()
for name in "${functions[@]}"; do bin_args+=(--bin "$name"); done

build_dir="${CARGO_TARGET_DIR:-$root/target}/lambda-$arch"
echo "package: building ${#functions[@]} functions for $arch ($target): ${functions[*]}" >&2
start=$(date +%s)
(cd "$root" && cargo lambda build --release "$arch_flag" --output-format zip \
    --lambda-dir "$build_dir" "${bin_args[@]}")
end=$(date +%s)

mkdir -p "$dist_dir"
for name in "${functions[@]}"; do
    zip="$build_dir/$name/bootstrap.zip"
    if [[ ! -f "$zip" ]]; then
        echo "package: cargo-lambda produced no $zip" >&2
        exit 1
    fi
    cp "$zip" "$dist_dir/$name.zip"
done

echo "package: $arch build took $((end - start)) s; zips in ${dist_dir#"$root"/}:"
total=0
for name in "${functions[@]}"; do
    size="$(stat -c %s "$dist_dir/$name.zip")"
    total=$((total + size))
    printf '  %-20s %10s bytes (%s)\n' "$name.zip" "$size" "$(numfmt --to=iec-i --suffix=B "$size")"
done
printf '  %-20s %10s bytes (%s)\n' "total" "$total" "$(numfmt --to=iec-i --suffix=B "$total")"
echo "package: deploy with terraform -var lambda_architecture=$arch (infra/terraform; README.md, 'Deploy to AWS')"
