#!/usr/bin/python3
# tests/ref/reshard.py - splits a model.safetensors into N shards named
# model-0000i-of-0000N.safetensors plus model.safetensors.index.json, the way
# Hugging Face saves large checkpoints (tests of sharded loading).
#
# usage: reshard.py MODEL_SAFETENSORS OUT_DIR N
import json
import os
import sys


def main():
    src, out_dir, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(src, "rb") as f:
        hlen = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(hlen))
        data = f.read()
    names = [k for k in header if k != "__metadata__"]
    weight_map = {}
    for i in range(n):
        fname = "model-%05d-of-%05d.safetensors" % (i + 1, n)
        part = names[i::n]
        hdr, blobs, off = {}, [], 0
        for name in part:
            b, e = header[name]["data_offsets"]
            hdr[name] = {"dtype": header[name]["dtype"], "shape": header[name]["shape"],
                         "data_offsets": [off, off + e - b]}
            blobs.append(data[b:e])
            off += e - b
            weight_map[name] = fname
        h = json.dumps(hdr).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(out_dir, fname), "wb") as f:
            f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": len(data)}, "weight_map": weight_map}, f)


if __name__ == "__main__":
    main()
