export {
  ClusterTestingModule,
  ClusterTestingNode,
  TestingCluster,
} from './cluster-testing-module.js';
export type {
  ClusterTestingLogLine,
  ClusterTestingNodeState,
  ClusterTestingOptions,
  WaitOptions,
} from './cluster-testing-module.js';
