#!/usr/bin/env bash
# fetch-crds.sh <cache-dir>: put the pinned upstream CRDs (Flux 2.9, Istio 1.30, cert-manager 1.21)
# into <cache-dir>, each verified against its sha256. Source order per file: $LABFLOW_SHARED_CRDS,
# else the `shared/crds` folder beside the clone, else the upstream raw URL (curl).
# Nothing unverified is ever left in the cache; <cache-dir>/.verified marks a complete set.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 <cache-dir>" >&2
    exit 2
fi
cache_dir=$1
script_dir=$(cd "$(dirname "$0")" && pwd)
shared_dir=${LABFLOW_SHARED_CRDS:-$script_dir/../../shared/crds}

# file name | repo | tag | path in repo | sha256  (same pins as shared/crds/SOURCES.md)
pins=(
"source-controller__source.toolkit.fluxcd.io_buckets.yaml|fluxcd/source-controller|v1.9.1|config/crd/bases/source.toolkit.fluxcd.io_buckets.yaml|366d4926a698332d824e97e9a9adf763f44dd7b59b70034916ebeefd91f1e43e"
"source-controller__source.toolkit.fluxcd.io_gitrepositories.yaml|fluxcd/source-controller|v1.9.1|config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml|39a5a46c81539c992abc53f9be3e5434cd70d50a10d169b1e8a450e0df1c9d09"
"source-controller__source.toolkit.fluxcd.io_helmcharts.yaml|fluxcd/source-controller|v1.9.1|config/crd/bases/source.toolkit.fluxcd.io_helmcharts.yaml|dc0158d014e90007c0a084973ef561cd20d3d44520ed4e604e8acff8bb19d2b0"
"source-controller__source.toolkit.fluxcd.io_helmrepositories.yaml|fluxcd/source-controller|v1.9.1|config/crd/bases/source.toolkit.fluxcd.io_helmrepositories.yaml|97c7759df00946cbb9a75a56457cff9964b2543d2248df859cef21e26b8e2ae6"
"source-controller__source.toolkit.fluxcd.io_ocirepositories.yaml|fluxcd/source-controller|v1.9.1|config/crd/bases/source.toolkit.fluxcd.io_ocirepositories.yaml|2655834d468e46a533410d9e2bc3f4e7cbf9b4c922b95652012acb09bfb2545a"
"source-controller__source.toolkit.fluxcd.io_externalartifacts.yaml|fluxcd/source-controller|v1.9.1|config/crd/bases/source.toolkit.fluxcd.io_externalartifacts.yaml|3e49150e6b483ee66de8ba1d91281b24c3bd7ade2b3a5f05e5db822e4ed70906"
"kustomize-controller__kustomize.toolkit.fluxcd.io_kustomizations.yaml|fluxcd/kustomize-controller|v1.9.4|config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml|da23ca0e6b4c80d3d26a91583137491e147ef4ef1e2208aece0d0af4ef851974"
"helm-controller__helm.toolkit.fluxcd.io_helmreleases.yaml|fluxcd/helm-controller|v1.6.3|config/crd/bases/helm.toolkit.fluxcd.io_helmreleases.yaml|aa8638ac68465ceac1f93a617baf5be833c589c51fd78a7384a4a274c252becc"
"notification-controller__notification.toolkit.fluxcd.io_alerts.yaml|fluxcd/notification-controller|v1.9.3|config/crd/bases/notification.toolkit.fluxcd.io_alerts.yaml|2b8f79249b39881bd23c49868f114c44c6e632dfcda451da576adfa16c64226f"
"notification-controller__notification.toolkit.fluxcd.io_providers.yaml|fluxcd/notification-controller|v1.9.3|config/crd/bases/notification.toolkit.fluxcd.io_providers.yaml|243ad33ac88ed965c6cd72b342dc5a93ecf5eefde2e03f4c2ea026b52d872135"
"notification-controller__notification.toolkit.fluxcd.io_receivers.yaml|fluxcd/notification-controller|v1.9.3|config/crd/bases/notification.toolkit.fluxcd.io_receivers.yaml|4c8be1ad7789b78f0727557d01e5f33eef9447a1f4aa9b830a3c1cc8a1508a9b"
"istio__crd-all.gen.yaml|istio/istio|1.30.3|manifests/charts/base/files/crd-all.gen.yaml|dcb43ff6b9af2f629b80b6a82597f5a91db259c757e66cc5353ac007da28351a"
"cert-manager__cert-manager.io_certificates.yaml|cert-manager/cert-manager|v1.21.1|deploy/crds/cert-manager.io_certificates.yaml|7ad91029c00ec959d54215b19d3b1a9b7e0247eaa60f987151c2b70d8661f8af"
"cert-manager__cert-manager.io_clusterissuers.yaml|cert-manager/cert-manager|v1.21.1|deploy/crds/cert-manager.io_clusterissuers.yaml|30008001b78aafb8e110af61359561104b5fafc3a4dc6ac0013245d0ee3fe4ca"
"cert-manager__cert-manager.io_issuers.yaml|cert-manager/cert-manager|v1.21.1|deploy/crds/cert-manager.io_issuers.yaml|05e37efb02777e0362d24269fa103c2fc11419f9c85e31854ef873e5d9e5c5cc"
"cert-manager__cert-manager.io_certificaterequests.yaml|cert-manager/cert-manager|v1.21.1|deploy/crds/cert-manager.io_certificaterequests.yaml|74cf3801ab146a1745498de5f3b619cde6f2dc89ae03755084be08129ce726c3"
)

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

mkdir -p "$cache_dir"
rm -f "$cache_dir/.verified"
staging=$(mktemp -d "${TMPDIR:-/tmp}/labflow-crds.XXXXXX")
trap 'rm -rf "$staging"' EXIT

for row in "${pins[@]}"; do
    IFS='|' read -r name repo tag path want <<<"$row"
    tmp="$staging/$name"
    if [[ -f "$shared_dir/$name" ]]; then
        cp "$shared_dir/$name" "$tmp"
        origin="$shared_dir/$name"
    else
        url="https://raw.githubusercontent.com/$repo/$tag/$path"
        if ! curl --fail --silent --show-error --location --retry 3 --output "$tmp" "$url"; then
            echo "fetch-crds: download failed: $url" >&2
            exit 1
        fi
        origin=$url
    fi
    got=$(sha256_of "$tmp")
    if [[ "$got" != "$want" ]]; then
        echo "fetch-crds: sha256 mismatch for $name from $origin: expected $want, got $got (nothing cached)" >&2
        exit 1
    fi
done

# Only a fully verified set reaches the cache.
for row in "${pins[@]}"; do
    name=${row%%|*}
    rm -f "$cache_dir/$name"
    cp "$staging/$name" "$cache_dir/$name"
done

touch "$cache_dir/.verified"
echo "fetch-crds: ${#pins[@]} CRD files verified into $cache_dir"
