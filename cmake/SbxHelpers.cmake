# Build helpers shared by every directory.

# Turn SBX_SANITIZER into compile and link flags for every target.
function(sbx_apply_sanitizer which)
  if(which STREQUAL "none" OR which STREQUAL "")
    return()
  endif()
  set(flags -fsanitize=${which} -fno-omit-frame-pointer)
  if(which MATCHES "undefined")
    list(APPEND flags -fno-sanitize-recover=all)
  endif()
  add_compile_options(${flags})
  add_link_options(${flags})
endfunction()

# sbx_test(NAME SOURCES... LABEL label [TIMEOUT s] [LIBS ...])
# One executable per test, registered with ctest under a label and a timeout.
function(sbx_test name)
  cmake_parse_arguments(T "" "LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 60)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE sbx_test_harness sbx_warnings ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77)
endfunction()
