import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { ClusterModuleOptions } from './interfaces/cluster-options.interface.js';

/** Extras of `forRoot` / `forRootAsync`. */
export interface ClusterModuleExtras {
  /** Register `ClusterService` globally, like `ConfigModule.forRoot({ isGlobal: true })`. */
  isGlobal?: boolean;
}

export const {
  ConfigurableModuleClass: ConfigurableClusterModule,
  MODULE_OPTIONS_TOKEN: CLUSTER_MODULE_OPTIONS,
  OPTIONS_TYPE: CLUSTER_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: CLUSTER_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<ClusterModuleOptions>({ moduleName: 'Cluster' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createClusterOptions')
  .setExtras<ClusterModuleExtras>({ isGlobal: false }, (definition, extras) => ({
    ...definition,
    global: extras.isGlobal,
  }))
  .build();
