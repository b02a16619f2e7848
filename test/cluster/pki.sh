#!/usr/bin/env bash
# pki.sh DIR — a throwaway PKI for the test cluster: a CA, serving and client certificates, the
# service-account key pair and one kubeconfig per client. ECDSA P-256 because RSA key generation
# took seconds on the shared cores. Does nothing when DIR/ca.crt exists (delete DIR to renew).
# Env: NODE_NAME, HOST_IP (for the kubelet and apiserver certificates).
set -euo pipefail
dir=$1
node=${NODE_NAME:-$(hostname)}
ip=${HOST_IP:-127.0.0.1}
[ -f "$dir/ca.crt" ] && exit 0
mkdir -p "$dir"
cd "$dir"

key() { openssl ecparam -name prime256v1 -genkey -noout -out "$1.key" 2>/dev/null; }

key ca
openssl req -x509 -new -key ca.key -out ca.crt -days 3650 -subj /CN=stowage-test-ca 2>/dev/null
key sa
openssl ec -in sa.key -pubout -out sa.pub 2>/dev/null

# cert NAME SUBJECT EXTENDED_KEY_USAGE [SUBJECT_ALT_NAMES]
cert() {
  key "$1"
  openssl req -new -key "$1.key" -subj "$2" 2>/dev/null |
    openssl x509 -req -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 -out "$1.crt" \
      -extfile <(echo "basicConstraints=CA:FALSE"
                 echo "keyUsage=critical,digitalSignature,keyEncipherment"
                 echo "extendedKeyUsage=$3"
                 [ -z "${4:-}" ] || echo "subjectAltName=$4") 2>/dev/null
}
cert apiserver /CN=kube-apiserver serverAuth \
  "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:$node,IP:127.0.0.1,IP:10.96.0.1,IP:$ip"
cert apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client/O=system:masters" clientAuth
cert admin "/CN=kubernetes-admin/O=system:masters" clientAuth
cert controller-manager /CN=system:kube-controller-manager clientAuth
cert scheduler /CN=system:kube-scheduler clientAuth
cert kube-proxy /CN=system:kube-proxy clientAuth
cert kubelet-client "/CN=system:node:$node/O=system:nodes" clientAuth
cert kubelet "/CN=$node" serverAuth "DNS:$node,DNS:localhost,IP:127.0.0.1,IP:$ip"
rm -f ca.srl
echo "pki: generated in $dir for node $node ($ip)"
