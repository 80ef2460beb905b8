# tests/ref/cuda_attention_sim.py - a numpy model of engine/cuda-attention.cu's work split
# (query tiles, GQA head groups, split-K chunks, per-row causal / sliding masks,
# 32-position online softmax, split combine) checked against direct attention.
# Run by hand: /usr/bin/python3 tests/ref/cuda_attention_sim.py (~1 min).
# Keep its constants in step with the kernel (ATTN_ROWS, ATTN_KT, ATTN_MIN_SPLIT).
import numpy as np, math
rng=np.random.default_rng(0)
ROWS=16; KT=32; MINS=256; MAXS=64
def tile_tokens(H,KV):
    g=H//KV; return 1 if g>=ROWS else ROWS//g
def plan(pos,seq,qt):
    t=[];i=0;n=len(pos)
    while i<n:
        j=i+1
        while j<n and j-i<qt and seq[j]==seq[i] and pos[j]==pos[j-1]+1: j+=1
        t.append((i,j-i)); i=j
    return t
def splits(nt,H,KV,span,nsm=132):
    g=H//KV; hg=min(g,ROWS); blocks=nt*KV*((g+hg-1)//hg); want=2*nsm
    if blocks>=want or span<=MINS: return 1
    s=(want+blocks-1)//blocks; s=min(s,(span+MINS-1)//MINS,MAXS); return max(1,s)
def run(H,KV,HD,bs,seqs,toks,window):
    # seqs: list of context lengths (cache content); toks: list of (seq,pos)
    maxlen=max(p for s,p in toks)+1
    K={s:rng.standard_normal((maxlen+bs,KV,HD)).astype(np.float32) for s in range(len(seqs))}
    V={s:rng.standard_normal((maxlen+bs,KV,HD)).astype(np.float32) for s in range(len(seqs))}
    n=len(toks); q=rng.standard_normal((n,H,HD)).astype(np.float32)
    pos=[p for s,p in toks]; seq=[s for s,p in toks]
    # direct
    ref=np.zeros((n,H,HD),np.float32); G=H//KV
    for i,(s,p) in enumerate(toks):
        lo=max(0,p-window+1) if window>0 else 0
        for h in range(H):
            kv=h//G; sc=K[s][lo:p+1,kv]@q[i,h]/math.sqrt(HD); w=np.exp(sc-sc.max()); ref[i,h]=(w/w.sum())@V[s][lo:p+1,kv]
    qt=tile_tokens(H,KV); tiles=plan(pos,seq,qt)
    span=1
    for t0,nt in tiles:
        p0=pos[t0]; p1=pos[t0+nt-1]; k0=max(0,p0-window+1) if window>0 else 0; span=max(span,p1-k0+1)
    ns=splits(len(tiles),H,KV,span)
    nsr=ns
    g=G; hg=min(g,ROWS); nhg=(g+hg-1)//hg
    part={}
    out=np.zeros_like(ref)
    for (t0,nt) in tiles:
        for by in range(KV*nhg):
            kvh=by//nhg; hgrp=by%nhg; head0=kvh*g+hgrp*hg; heads=min(hg,g-hgrp*hg); nrows=nt*heads
            assert nrows<=ROWS
            for sp in range(nsr):
                p_first=pos[t0]; p_last=pos[t0+nt-1]; kstart=max(0,p_first-window+1) if window>0 else 0
                tspan=p_last-kstart+1; chunk=((tspan+nsr-1)//nsr+KT-1)//KT*KT
                ks_lo=kstart+sp*chunk; ks_hi=min(p_last,ks_lo+chunk-1)
                for r in range(nrows):
                    t=t0+r//heads; h=head0+r%heads; pt=pos[t]; s=seq[t]
                    wlo=max(0,pt-window+1) if window>0 else 0
                    lo=max(wlo,ks_lo); hi=min(pt,ks_hi)
                    m=-np.inf; l=0.0; acc=np.zeros(HD)
                    j0=ks_lo
                    while j0<=ks_hi:
                        ps=np.arange(j0,j0+KT); valid=(ps>=lo)&(ps<=hi)
                        sc=np.full(KT,-np.inf)
                        for jj in range(KT):
                            if valid[jj]: sc[jj]=(q[t,h]/math.sqrt(HD))@K[s][ps[jj],kvh]
                        tmax=sc.max()
                        if tmax!=-np.inf:
                            mn=max(m,tmax); corr=math.exp(m-mn) if m!=-np.inf else 0.0
                            w=np.where(valid,np.exp(sc-mn),0.0); l=l*corr+w.sum(); m=mn; acc*=corr
                            for jj in range(KT):
                                if w[jj]!=0: acc+=w[jj]*V[s][ps[jj],kvh]
                        j0+=KT
                    if nsr==1: out[t,h]=acc/l if l>0 else 0
                    else: part[(t,h,sp)]=(m,l,acc)
    if nsr>1:
        for t in range(n):
            for h in range(H):
                ps=[part[(t,h,s)] for s in range(nsr)]
                M=max([m for m,l,a in ps if l>0]); L=sum(l*math.exp(m-M) for m,l,a in ps if l>0)
                out[t,h]=sum(a*math.exp(m-M) for m,l,a in ps if l>0)/L
    err=np.abs(out-ref).max()
    print(f"H{H} KV{KV} HD{HD} tiles {len(tiles)} qt {qt} span {span} splits {nsr} window {window}: max err {err:.2e}")
    assert err<1e-4
# decode of 2 seqs long context (split-K), GQA 4
run(8,2,16,16,[0,0],[(0,700),(1,300)],0)
# a short tile among long ones: its later splits are empty
run(8,2,16,16,[0,0],[(0,700),(1,4)],0)
# prefill chunk + decode mix
run(4,2,8,4,[0,0,0],[(0,p) for p in range(10,30)]+[(1,5)]+[(2,p) for p in range(0,7)],0)
# sliding window
run(4,2,8,16,[0,0],[(0,p) for p in range(20,42)]+[(1,100)],8)
# MQA with 32 heads per kv (head groups)
run(32,1,8,16,[0],[(0,p) for p in range(0,5)]+[(0,400)] ,0)
run(6,1,16,16,[0],[(0,p) for p in range(0,40)],0)
