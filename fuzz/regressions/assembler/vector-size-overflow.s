; Two cores
; worbell 0

.core 1
.buffer y   655         ; unt tile has arrive)
vec.silu y, y, 16000000000000000384 fp32
          ; 16 r   `    e has arrive)
vec.silu y, y, 16000000000000000384 fp32
              ; 16rows nt tile has arrive)
vec.silu y, y, 16000000000000000384 fp32
                            ; unt tiarrive)
vec.silu y, y, 16000000000000000384 fp32
          ; 16 r   `                         ; unt tile has arrive)
vec.silu y, y, 16000000000000000384 fp32
                    ; 16 ro   edrive)
vec.silu y, y, 16000000000000000384 fp32
              ; unt tile has arrive)
vec.silu y, y, 16000000000000000384 fp32
                    ; 16 ro        ; unt tile has arrive)
vec.silu y, y, 16000000000000000384 fp32
                    ; 16 ro   edrive)Jvec.0Xlrier
doorbell 2
