"""Stages and zips one architecture of the Warden layer, then checks what went in.

The zip is what users deploy, so it is checked here rather than trusted: the binary's ELF
machine matches the architecture, it is statically linked (no program interpreter, no needed
shared libraries: it must run on Amazon Linux 2 and 2023 alike), and the zip fits the budget.
The in-process guard (`warden/lib/libwarden_guard.so`) is a shared library of the same machine
that needs only glibc's own libraries; its exec wrapper (`warden/wrapper`) is a static binary
like the extension, and its language watch for Node.js (`warden/lib/node-watch.js`) a script. Entries carry
fixed timestamps, so the same files give the same zip.
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
PT_DYNAMIC, PT_INTERP, DT_NEEDED, DT_STRTAB = 2, 3, 1, 5
ET_DYN = 3
# What the guard may need: glibc's libraries, present on every Lambda runtime.
GLIBC_LIBRARIES = {
    "libc.so.6",
    "libdl.so.2",
    "libpthread.so.0",
    "libm.so.6",
    "librt.so.1",
    "ld-linux-x86-64.so.2",
    "ld-linux-aarch64.so.1",
}


NODE_WATCH = "node-watch.js"
NODE_WATCH_SOURCE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "extension", "warden-guard", "watch", NODE_WATCH
)


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


def needed_libraries(data):
    """DT_NEEDED names of a 64-bit little-endian ELF file's dynamic section."""
    phoff = struct.unpack_from("<Q", data, 32)[0]
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    segments = [
        struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize) for i in range(phnum)
    ]
    tags = []
    for p_type, _, p_offset, _, _, p_filesz in segments:
        if p_type == PT_DYNAMIC:
            for off in range(p_offset, p_offset + p_filesz, 16):
                tag, value = struct.unpack_from("<qQ", data, off)
                if tag == 0:
                    break
                tags.append((tag, value))
    strtab = next((v for t, v in tags if t == DT_STRTAB), None)
    if strtab is None:
        return []
    # DT_STRTAB is an address: find the file offset of the load segment holding it.
    offset = None
    for p_type, _, p_offset, p_vaddr, _, p_filesz in segments:
        if p_type == 1 and p_vaddr <= strtab < p_vaddr + p_filesz:
            offset = strtab - p_vaddr + p_offset
    if offset is None:
        raise LayerError("the guard's string table is outside its load segments")
    names = []
    for tag, value in tags:
        if tag == DT_NEEDED:
            start = offset + value
            names.append(data[start : data.index(b"\0", start)].decode())
    return names


def check_guard(path, arch):
    with open(path, "rb") as f:
        data = f.read()
    machine, interp, _ = elf_facts(path)
    if machine != MACHINES[arch]:
        raise LayerError(f"{path}: ELF machine {machine}, want {MACHINES[arch]} ({arch})")
    if struct.unpack_from("<H", data, 16)[0] != ET_DYN or interp:
        raise LayerError(f"{path}: not a shared library")
    extra = sorted(set(needed_libraries(data)) - GLIBC_LIBRARIES)
    if extra:
        raise LayerError(f"{path}: needs libraries beyond glibc: {', '.join(extra)}")


def check_binary(path, arch):
    machine, interp, needed = elf_facts(path)
    if machine != MACHINES[arch]:
        raise LayerError(f"{path}: ELF machine {machine}, want {MACHINES[arch]} ({arch})")
    if interp or needed:
        raise LayerError(f"{path}: dynamically linked ({needed} needed libraries)")


def stage(arch, binary, model_dir, guard, wrapper, out):
    root = os.path.join(out, arch)
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(os.path.join(root, "extensions"))
    target = os.path.join(root, "extensions", "warden")
    shutil.copyfile(binary, target)
    os.chmod(target, 0o755)
    if model_dir:
        shutil.copytree(model_dir, os.path.join(root, "warden"))
    if guard:
        os.makedirs(os.path.join(root, "warden", "lib"), exist_ok=True)
        library = os.path.join(root, "warden", "lib", "libwarden_guard.so")
        shutil.copyfile(guard, library)
        os.chmod(library, 0o644)
        program = os.path.join(root, "warden", "wrapper")
        shutil.copyfile(wrapper, program)
        os.chmod(program, 0o755)
        # The guard's language watch for Node.js (the wrapper loads it with NODE_OPTIONS).
        watch = os.path.join(root, "warden", "lib", NODE_WATCH)
        shutil.copyfile(NODE_WATCH_SOURCE, watch)
        os.chmod(watch, 0o644)
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
    parser.add_argument("--guard", help="the in-process guard library (warden/lib/)")
    parser.add_argument("--wrapper", help="its exec wrapper, a static binary (warden/wrapper)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    try:
        check_binary(args.binary, args.arch)
        if bool(args.guard) != bool(args.wrapper):
            raise LayerError("--guard and --wrapper go together")
        if args.guard:
            check_guard(args.guard, args.arch)
            check_binary(args.wrapper, args.arch)
        root = stage(args.arch, args.binary, args.model_dir, args.guard, args.wrapper, args.out)
        path = os.path.join(args.out, f"warden-{args.arch}.zip")
        write_zip(root, path)
        size = os.path.getsize(path)
        if size > BUDGET:
            raise LayerError(f"{path}: {size} bytes, over the {BUDGET} byte budget")
    except (LayerError, OSError) as e:
        print(f"build-layer: {e}", file=sys.stderr)
        return 1
    binary = os.path.getsize(args.binary)
    guard = f"; warden/lib/libwarden_guard.so {os.path.getsize(args.guard) / MIB:.2f} MiB" if args.guard else ""
    print(
        f"{path}: {size / MIB:.2f} MiB zipped (budget {BUDGET / MIB:.0f} MiB); "
        f"extensions/warden {binary / MIB:.2f} MiB, {args.arch}, static{guard}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
