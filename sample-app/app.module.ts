import { Module } from '@nestjs/common';
import { ConditionalModule, ConfigModule } from '@nestjs/config';
import { ScheduleModule } from '@nestjs/schedule';
import { ClusterModule } from '../lib/index.js';
import { ClusterApiModule } from './cluster/cluster-api.module.js';
import { DashboardModule } from './dashboard/dashboard.module.js';
import { DebugModule } from './debug/debug.module.js';
import { FlagsModule } from './flags/flags.module.js';
import { HealthModule } from './health/health.module.js';
import { JobsModule } from './jobs/jobs.module.js';
import { MessagesModule } from './messages/messages.module.js';
import { RoomsModule } from './rooms/rooms.module.js';
import { RpcModule } from './rpc/rpc.module.js';

@Module({
  imports: [
    // Environment variables (and a .env file in the working directory, if any).
    ConfigModule.forRoot({ isGlobal: true }),
    ScheduleModule.forRoot(),
    // NODE_COOKIE, LIBCLUSTER_STRATEGY, ...: see sample-app/.env.example.
    ClusterModule.forRootFromEnv({ isGlobal: true }),
    ClusterApiModule,
    MessagesModule,
    RpcModule,
    RoomsModule,
    FlagsModule,
    JobsModule,
    HealthModule,
    DashboardModule,
    // Test-only routes (POST /debug/stall), off unless SAMPLE_DEBUG_ROUTES=true.
    ConditionalModule.registerWhen(DebugModule, (env) => env.SAMPLE_DEBUG_ROUTES === 'true'),
  ],
})
export class AppModule {}
