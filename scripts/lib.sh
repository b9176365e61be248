# Shared by scripts/up.sh and scripts/test.sh: install missing Debian packages.

# ensure_packages PKG... — installs the ones that are missing (as root, or with sudo).
ensure_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "skiff: installing Debian packages: ${missing[*]}" >&2
    local as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { echo "skiff: need root (or sudo) to install ${missing[*]}" >&2; return 1; }
        as_root=(sudo)
    fi
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

# Packages every build needs: protoc for the etcd-client crate.
BUILD_PACKAGES=(protobuf-compiler libprotobuf-dev)
# Packages the tests need: a real etcd and etcdctl to compare the store with;
# for the container runtime: busybox-static (test images are built from it),
# runc and crun (reference runtimes for the differential test and the
# benchmark), docker-registry and skopeo (a real registry and a real client to
# push to it), the CNI plugins, nftables and iproute2.
TEST_PACKAGES=(etcd-server etcd-client busybox-static runc crun docker-registry skopeo
    containernetworking-plugins nftables iproute2)
# Packages `scripts/up.sh` needs: etcdctl, to look into the store.
RUN_PACKAGES=(etcd-client)
# Packages the node needs to run pods: images are built from busybox-static,
# pods are networked by the standard CNI plugins, fenced in with nftables.
NODE_PACKAGES=(busybox-static containernetworking-plugins nftables iproute2 util-linux)
