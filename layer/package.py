"""Stages and zips one architecture of the Warden layer, then checks what went in.

The zip is what users deploy, so it is checked here rather than trusted: the binary's ELF
machine matches the architecture, it is statically linked (no program interpreter, no needed
shared libraries: it must run on Amazon Linux 2 and 2023 alike), and the zip fits the budget.
Entries carry fixed timestamps, so the same binary gives the same zip.
"""

import argparse
import os
import shutil
import struct
import sys
import zipfile

MACHINES = {"x86_64": 62, "arm64": 183}  # ELF e_machine: EM_X86_64, EM_AARCH64
MIB = 1024 * 1024
BUDGET = 4 * MIB
EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
PT_DYNAMIC, PT_INTERP, DT_NEEDED = 2, 3, 1


class LayerError(Exception):
    pass


def elf_facts(path):
    """(e_machine, has_interpreter, needed_count) of a 64-bit little-endian ELF file."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise LayerError(f"{path}: not a 64-bit little-endian ELF file")
    machine = struct.unpack_from("<H", data, 18)[0]
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    interp, needed = False, 0
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize
        )
        if p_type == PT_INTERP:
            interp = True
        elif p_type == PT_DYNAMIC:
            for off in range(p_offset, p_offset + p_filesz, 16):
                tag = struct.unpack_from("<q", data, off)[0]
                if tag == 0:
                    break
                needed += tag == DT_NEEDED
    return machine, interp, needed


def check_binary(path, arch):
    machine, interp, needed = elf_facts(path)
    if machine != MACHINES[arch]:
        raise LayerError(f"{path}: ELF machine {machine}, want {MACHINES[arch]} ({arch})")
    if interp or needed:
        raise LayerError(f"{path}: dynamically linked ({needed} needed libraries)")


def stage(arch, binary, model_dir, out):
    root = os.path.join(out, arch)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "extensions"))
    target = os.path.join(root, "extensions", "warden")
    shutil.copyfile(binary, target)
    os.chmod(target, 0o755)
    if model_dir:
        shutil.copytree(model_dir, os.path.join(root, "warden"))
    return root


def entries(root):
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            yield path, os.path.relpath(path, root)


def write_zip(root, path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for full, name in entries(root):
            mode = 0o755 if os.access(full, os.X_OK) else 0o644
            info = zipfile.ZipInfo(name, EPOCH)
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 3  # Unix, so that unzip restores the mode
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(full, "rb") as f:
                z.writestr(info, f.read(), compresslevel=9)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(MACHINES), required=True)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--model-dir")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        check_binary(args.binary, args.arch)
        root = stage(args.arch, args.binary, args.model_dir, args.out)
        path = os.path.join(args.out, f"warden-{args.arch}.zip")
        write_zip(root, path)
        size = os.path.getsize(path)
        if size > BUDGET:
            raise LayerError(f"{path}: {size} bytes, over the {BUDGET} byte budget")
    except (LayerError, OSError) as e:
        print(f"build-layer: {e}", file=sys.stderr)
        return 1
    binary = os.path.getsize(args.binary)
    print(
        f"{path}: {size / MIB:.2f} MiB zipped (budget {BUDGET / MIB:.0f} MiB); "
        f"extensions/warden {binary / MIB:.2f} MiB, {args.arch}, static"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
