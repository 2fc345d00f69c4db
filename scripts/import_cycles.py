#!/usr/bin/env python3
"""Fails when two Rust files of a crate import each other (a module and its own child module
excepted): `use crate::...`, `super::...` and inline `crate::` paths, outside `#[cfg(test)]`.
Usage: scripts/import_cycles.py <crate src dir>...  (scripts/test.sh runs it on every crate)."""
import os,re,sys
def crate_files(root):
    files={}
    for d,_,fs in os.walk(root):
        for f in fs:
            if f.endswith('.rs'):
                p=os.path.join(d,f); rel=os.path.relpath(p,root)[:-3]
                parts=rel.split(os.sep)
                if parts in (['lib'],['main']): mod=()
                elif parts[-1]=='mod': mod=tuple(parts[:-1])
                else: mod=tuple(parts)
                files[mod]=p
    return files
def resolve(files, path):
    # longest prefix that is a module file
    for i in range(len(path),-1,-1):
        if tuple(path[:i]) in files: return tuple(path[:i])
    return None
def analyze(root):
    files=crate_files(root); edges={}
    for mod,p in files.items():
        src=open(p).read()
        src=src.split('#[cfg(test)]')[0]
        src=re.sub(r'//[^\n]*','',src)
        deps=set()
        # expand use groups roughly: crate::a::{b, c::d}
        for m in re.finditer(r'\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)(::\{([^}]*)\})?',src):
            base=m.group(1); rest=m.group(2).split('::')[1:]
            if base=='crate': path=list(rest)
            else:
                parent=list(mod[:-1]) if not p.endswith('mod.rs') else list(mod[:-1])
                path=parent+rest
            targets=[path]
            if m.group(4):
                for item in m.group(4).split(','):
                    item=item.strip().split(' as ')[0]
                    if item and item!='self': targets.append(path+item.split('::'))
            for t in targets:
                r=resolve(files,t)
                if r is not None and r!=mod: deps.add(r)
        edges[mod]=deps
    out=[]
    for a,ds in edges.items():
        for b in ds:
            if a<b and a in edges.get(b,()):
                if a[:len(b)]==b or b[:len(a)]==a: continue
                out.append((files[a],files[b]))
    return out
found = 0
for root in sys.argv[1:]:
    for a, b in analyze(root):
        print(f"{a} <-> {b}: each imports the other")
        found += 1
if found:
    sys.exit(1)
print(f"no two files import each other in {', '.join(sys.argv[1:])}")
