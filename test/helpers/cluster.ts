/** Tests start their Redis Clusters with the same code as the cluster benchmark (src/redis/local-cluster.ts). */
export * from '../../src/redis/local-cluster.ts';
