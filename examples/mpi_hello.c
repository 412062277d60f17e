/* mpi_hello.c: a plain MPI program for PMI pass-through (examples/2_mpi_process_group.py).
 *
 * Each rank reports its rank, world size, host, CPU affinity and the value of
 * MPIGROUP_EXAMPLE_VAR from its environment; rank 0 prints the Allreduce of
 * (rank + 1) over MPI_COMM_WORLD, which must equal n(n+1)/2.
 *
 * Build with the Open MPI wheel's compiler wrapper:  mpicc -o mpi_hello mpi_hello.c
 */
#define _GNU_SOURCE
#include <mpi.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int rank, size, len, value, total = 0;
    char host[MPI_MAX_PROCESSOR_NAME];
    char cpus[1024] = "";
    cpu_set_t mask;

    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Get_processor_name(host, &len);

    CPU_ZERO(&mask);
    sched_getaffinity(0, sizeof(mask), &mask);
    for (int c = 0; c < CPU_SETSIZE; c++) {
        if (CPU_ISSET(c, &mask)) {
            char item[16];
            snprintf(item, sizeof(item), "%s%d", cpus[0] ? "," : "", c);
            strncat(cpus, item, sizeof(cpus) - strlen(cpus) - 1);
        }
    }

    value = rank + 1;
    MPI_Allreduce(&value, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    const char *var = getenv("MPIGROUP_EXAMPLE_VAR");
    printf("rank %d of %d on %s cpus=%s var=%s\n", rank, size, host, cpus, var ? var : "(unset)");
    fflush(stdout);
    if (rank == 0) {
        printf("allreduce sum=%d expected=%d\n", total, size * (size + 1) / 2);
        fflush(stdout);
    }
    MPI_Finalize();
    return total == size * (size + 1) / 2 ? 0 : 1;
}
