/** cluster-key-slot (ioredis's own dependency) ships no types: the Cluster slot of a key, hash tags honoured. */
declare module 'cluster-key-slot' {
  function calculateSlot(key: string | Buffer): number;
  namespace calculateSlot {
    /** The one slot of all `keys`, or -1 when they span several. */
    function generateMulti(keys: (string | Buffer)[]): number;
  }
  export default calculateSlot;
}
