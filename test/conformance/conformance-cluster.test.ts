/**
 * The upstream conformance suite against a 3-node cluster (issue 14): three `cairn serve`
 * processes joined through a real 3-member etcd, over one object store, tiering forced, behind a
 * front that sends every request to a random node. Each request is answered by whichever node
 * gets it: forwarded to the slot owner, or (sealed history) answered from the node's own view.
 */
import { runConformanceTests } from '@durable-streams/server-conformance-tests';
import { CONFORMANCE_LONG_POLL_TIMEOUT_MS } from '../support/conformance.ts';
import { useClusterUnderTest } from '../support/cluster-front.ts';

const running = useClusterUnderTest({
  size: 3,
  name: `conformance-${process.pid}`,
  extraArgs: ['--long-poll-timeout-ms', String(CONFORMANCE_LONG_POLL_TIMEOUT_MS), '--segment-size-bytes', '64', '--seal-idle-ms', '0', '--chunk-bytes-max', '4096'],
});

runConformanceTests({
  get baseUrl() {
    return running().cluster.url;
  },
  longPollTimeoutMs: CONFORMANCE_LONG_POLL_TIMEOUT_MS,
});
