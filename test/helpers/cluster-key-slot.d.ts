// ioredis's own dependency (its Cluster client routes with it); it ships no types.
declare module 'cluster-key-slot' {
  /** The Redis Cluster slot of a key (CRC16 of its hash tag, or of the whole key), 0–16383. */
  function generate(key: string | Uint8Array): number;
  export default generate;
}
