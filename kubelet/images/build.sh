#!/usr/bin/env bash
# Builds Skiff's small test and demo images from Debian's busybox-static, as
# OCI image layout archives ("oci-archive"), with no network:
#
#   skiff-busybox.tar  docker.io/skiff/busybox:latest  a shell (1 layer)
#   skiff-httpd.tar    docker.io/skiff/httpd:latest    busybox httpd on port 80 (2 layers)
#   skiff-layers.tar   docker.io/skiff/layers:latest   3 layers: deletes a file, replaces a
#                                                      directory opaquely, adds special files
#
# Usage: kubelet/images/build.sh OUTPUT_DIR
#
# The output is deterministic for a given busybox binary: fixed mtimes
# (SOURCE_DATE_EPOCH), sorted names, numeric owners, gzip without name or
# timestamp. Owners and device nodes need root; run as another user, the
# script re-runs itself under fakeroot. Check an archive with
#   skopeo inspect oci-archive:OUTPUT_DIR/skiff-busybox.tar
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTPUT_DIR" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    if command -v fakeroot >/dev/null; then
        exec fakeroot -- "$0" "$@"
    fi
    echo "$0: needs root or fakeroot (file owners and device nodes)" >&2
    exit 1
fi

OUT=$1
BUSYBOX=${BUSYBOX:-/bin/busybox}
EPOCH=${SOURCE_DATE_EPOCH:-1700000000}
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
CREATED=$(date -u -d "@$EPOCH" +%Y-%m-%dT%H:%M:%SZ)
PATH_ENV="PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

[ -x "$BUSYBOX" ] || { echo "$0: $BUSYBOX not found (apt-get install busybox-static)" >&2; exit 1; }
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/skiff-images-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# A reproducible tar of directory $1's contents into file $2.
det_tar() {
    tar --create --file="$2" --directory="$1" \
        --sort=name --format=posix \
        --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
        --mtime="@$EPOCH" --numeric-owner --xattrs --xattrs-include='user.*' \
        .
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }

# Adds layer directory $2 to layout $1 as a gzip blob. Sets LAYER_DESC (a
# manifest descriptor) and DIFF_ID.
add_layer() {
    local layout=$1 dir=$2 tarfile gz digest
    tarfile=$(mktemp "$WORK/layer.XXXXXX")
    det_tar "$dir" "$tarfile"
    DIFF_ID=sha256:$(sha256 "$tarfile")
    gzip -n -9 -c "$tarfile" >"$tarfile.gz"
    digest=$(sha256 "$tarfile.gz")
    mv "$tarfile.gz" "$layout/blobs/sha256/$digest"
    rm -f "$tarfile"
    LAYER_DESC=$(printf '{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}' \
        "$digest" "$(size "$layout/blobs/sha256/$digest")")
}

# Writes JSON $2 as a blob of layout $1; sets BLOB_DIGEST and BLOB_SIZE.
add_json_blob() {
    local layout=$1 json=$2 f
    f=$(mktemp "$WORK/json.XXXXXX")
    printf '%s' "$json" >"$f"
    BLOB_DIGEST=$(sha256 "$f")
    BLOB_SIZE=$(size "$f")
    mv "$f" "$layout/blobs/sha256/$BLOB_DIGEST"
}

# The base layer, shared by all three images (same bytes, same diff id, so
# a node unpacks it once for all of them).
make_base() {
    local d=$1
    mkdir -p "$d"/{bin,etc,root,tmp,home,var,proc,sys,dev,usr/share/skiff}
    cp "$BUSYBOX" "$d/bin/busybox"
    chmod 0755 "$d/bin/busybox"
    local applet
    for applet in $("$BUSYBOX" --list | sort); do
        [ "$applet" = busybox ] || ln -s busybox "$d/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$d/etc/passwd"
    printf 'root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n' >"$d/etc/group"
    printf 'Welcome to a Skiff busybox image.\n' >"$d/etc/motd"
    printf 'v1\n' >"$d/usr/share/skiff/version"
    printf 'from the base layer\n' >"$d/usr/share/skiff/old.txt"
    chmod 0755 "$d" "$d"/{bin,etc,home,var,proc,sys,dev,usr,usr/share,usr/share/skiff}
    chmod 0644 "$d"/etc/{passwd,group,motd} "$d"/usr/share/skiff/*
    chmod 0700 "$d/root"
    chmod 1777 "$d/tmp"
}

# Builds one image. $1 archive name, $2 image name, $3 config "config"
# object JSON, then layer directories (bottom first).
build_image() {
    local archive=$1 name=$2 runconfig=$3
    shift 3
    local layout="$WORK/layout-$archive"
    mkdir -p "$layout/blobs/sha256"
    local descs="" diffs="" history="" dir
    for dir in "$@"; do
        add_layer "$layout" "$dir"
        descs="${descs:+$descs,}$LAYER_DESC"
        diffs="${diffs:+$diffs,}\"$DIFF_ID\""
        history="${history:+$history,}$(printf '{"created":"%s","created_by":"kubelet/images/build.sh: %s"}' "$CREATED" "$(basename "$dir")")"
    done
    add_json_blob "$layout" "$(printf '{"created":"%s","architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]},"history":[%s]}' \
        "$CREATED" "$ARCH" "$runconfig" "$diffs" "$history")"
    local config_desc
    config_desc=$(printf '{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s}' "$BLOB_DIGEST" "$BLOB_SIZE")
    add_json_blob "$layout" "$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":%s,"layers":[%s]}' \
        "$config_desc" "$descs")"
    printf '{"imageLayoutVersion":"1.0.0"}' >"$layout/oci-layout"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"},"platform":{"architecture":"%s","os":"linux"}}]}' \
        "$BLOB_DIGEST" "$BLOB_SIZE" "$name" "$name" "$ARCH" >"$layout/index.json"
    chmod -R u=rwX,go=rX "$layout"
    det_tar "$layout" "$OUT/$archive.tar"
    echo "$OUT/$archive.tar: $name (manifest sha256:$BLOB_DIGEST)"
}

BASE="$WORK/01-base"
make_base "$BASE"

# skiff/busybox: a shell.
build_image skiff-busybox docker.io/skiff/busybox:latest \
    "{\"Env\":[\"$PATH_ENV\"],\"Cmd\":[\"sh\"]}" \
    "$BASE"

# skiff/httpd: busybox httpd in the foreground, serving /var/www on port 80.
WWW="$WORK/02-www"
mkdir -p "$WWW/var/www"
printf '<!doctype html>\n<title>Skiff</title>\n<h1>Hello from Skiff</h1>\n' >"$WWW/var/www/index.html"
chmod 0755 "$WWW" "$WWW/var" "$WWW/var/www"
chmod 0644 "$WWW/var/www/index.html"
build_image skiff-httpd docker.io/skiff/httpd:latest \
    "{\"Env\":[\"$PATH_ENV\"],\"Entrypoint\":[\"/bin/httpd\",\"-f\",\"-v\"],\"Cmd\":[\"-p\",\"80\",\"-h\",\"/var/www\"],\"WorkingDir\":\"/var/www\",\"ExposedPorts\":{\"80/tcp\":{}},\"Labels\":{\"org.opencontainers.image.title\":\"skiff httpd\"}}" \
    "$BASE" "$WWW"

# skiff/layers: layer 2 deletes /etc/motd (whiteout) and replaces
# /usr/share/skiff opaquely; layer 3 adds files of every kind.
DEL="$WORK/02-delete"
mkdir -p "$DEL/etc" "$DEL/usr/share/skiff"
: >"$DEL/etc/.wh.motd"
: >"$DEL/usr/share/skiff/.wh..wh..opq"
printf 'v2\n' >"$DEL/usr/share/skiff/version"
chmod 0755 "$DEL" "$DEL/etc" "$DEL/usr" "$DEL/usr/share" "$DEL/usr/share/skiff"
chmod 0644 "$DEL/etc/.wh.motd" "$DEL/usr/share/skiff/.wh..wh..opq" "$DEL/usr/share/skiff/version"

ADD="$WORK/03-add"
mkdir -p "$ADD/srv"
printf 'hello from layer 3\n' >"$ADD/srv/hello.txt"
ln "$ADD/srv/hello.txt" "$ADD/srv/hardlink.txt"
ln -s hello.txt "$ADD/srv/symlink"
printf 'owned by user 1000\n' >"$ADD/srv/owned.txt"
chown 1000:1000 "$ADD/srv/owned.txt"
chmod 0640 "$ADD/srv/owned.txt"
printf '#!/bin/sh\nid\n' >"$ADD/srv/suid"
chmod 4755 "$ADD/srv/suid"
mknod "$ADD/srv/null" c 1 3
chmod 0666 "$ADD/srv/null"
mkfifo "$ADD/srv/fifo"
chmod 0600 "$ADD/srv/fifo"
printf 'has an xattr\n' >"$ADD/srv/xattr.txt"
chmod 0644 "$ADD/srv/xattr.txt" "$ADD/srv/hello.txt"
chmod 0755 "$ADD" "$ADD/srv"
# No setfattr on a minimal system: python3's os.setxattr, if there is one.
if command -v python3 >/dev/null; then
    python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.skiff", b"layer3")' "$ADD/srv/xattr.txt"
else
    echo "$0: no python3: srv/xattr.txt gets no xattr" >&2
fi
build_image skiff-layers docker.io/skiff/layers:latest \
    "{\"Env\":[\"$PATH_ENV\"],\"Cmd\":[\"sh\"],\"WorkingDir\":\"/srv\"}" \
    "$BASE" "$DEL" "$ADD"
