; Two cores in a pipeline: core 0 computes a tile and hands it to core 1,
; which applies an activation and stores it. They meet at a barrier at the end.
.core 0
.buffer x   4096
.buffer w   262144
.buffer y   65536
load    x, hbm:0x0, 4096                       ; 16 rows of 256 FP8 activations
load    w, hbm:0x100000, 262144                ; 256 x 1024 FP8 weights
matmul  y, x, w, m=16 n=1024 k=256 fp8 acc=fp32
send    y, core1:0x0, 65536                    ; hand the result to core 1 over the mesh
signal  s0, core1                              ; ... and tell it, once the send is done
barrier
doorbell 1

.core 1
.buffer y   65536
.buffer o   32768
wait    s0                                     ; until core 0's tile has arrived
vec.silu y, y, 16384 fp32
vec.cvt  o, y, 16384 fp32 to=bf16
store   o, hbm:0x200000, 32768
barrier
doorbell 2
